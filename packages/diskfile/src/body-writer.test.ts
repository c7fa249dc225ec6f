import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BodyWriter, FLUSH_EVERY_BYTES, WRITE_BATCH_BYTES } from './body-writer.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'body-writer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Chunks of uneven sizes whose bytes depend on their offset, so a misplaced batch shows. */
function chunksOf(total: number): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  for (let i = 0; offset < total; i++) {
    const n = Math.min(total - offset, 1000 + ((i * 7919) % 70_000));
    const c = Buffer.allocUnsafe(n);
    for (let j = 0; j < n; j += 4096) c.writeUInt32LE((offset + j) >>> 0, j > n - 4 ? n - 4 : j);
    out.push(c);
    offset += n;
  }
  return out;
}

describe('BodyWriter', () => {
  it.each([
    ['a small body (one write with the trailer)', 4096],
    ['a body of several batches', 3 * WRITE_BATCH_BYTES + 123],
    ['a body past the background flush', FLUSH_EVERY_BYTES + 5 * WRITE_BATCH_BYTES + 7],
  ])('%s: the file holds the body then the trailer; size, MD5 and CRC-32 are the body\'s', async (_, total) => {
    const path = join(dir, 'body');
    const fd = openSync(path, 'w');
    const writer = new BodyWriter(fd);
    const chunks = chunksOf(total);
    for (const c of chunks) await writer.add(c);
    const trailer = Buffer.from('TRAILER');
    const body = Buffer.concat(chunks);
    expect(writer.size).toBe(total);
    expect(writer.crc32).toBe(crc32(body));
    expect(writer.md5Hex()).toBe(createHash('md5').update(body).digest('hex'));
    await writer.finish(trailer);
    closeSync(fd);
    expect(readFileSync(path).equals(Buffer.concat([body, trailer]))).toBe(true);
  });

  it('frees the chunks once written when it owns them, and only then', async () => {
    for (const owns of [true, false]) {
      const path = join(dir, `owned-${owns}`);
      const fd = openSync(path, 'w');
      const writer = new BodyWriter(fd, undefined, true, owns);
      const chunks = chunksOf(2 * WRITE_BATCH_BYTES + 5000).map((c) => Buffer.concat([c], c.length + 8192));
      const body = Buffer.concat(chunks);
      for (const c of chunks) await writer.add(c);
      await writer.finish(Buffer.from('TRAILER'));
      closeSync(fd);
      expect(readFileSync(path).equals(Buffer.concat([body, Buffer.from('TRAILER')]))).toBe(true);
      const lengths = new Set(chunks.map((c) => c.length));
      if (owns) expect([...lengths]).toEqual([0]);
      else expect(lengths.has(0)).toBe(false);
    }
  });

  it('a failed write is reported (by add or by finish), and settle waits for what is in flight', async () => {
    const path = join(dir, 'ro');
    closeSync(openSync(path, 'w'));
    const fd = openSync(path, 'r');
    const writer = new BodyWriter(fd);
    const writeAll = async (): Promise<void> => {
      for (const c of chunksOf(3 * WRITE_BATCH_BYTES)) await writer.add(c);
      await writer.finish(Buffer.from('x'));
    };
    await expect(writeAll()).rejects.toMatchObject({ code: 'EBADF' });
    await writer.settle();
    closeSync(fd);
    expect(readFileSync(path).length).toBe(0);
  });
});
