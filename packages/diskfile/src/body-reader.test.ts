/**
 * BodyReader reads the next chunk while the current one is consumed: the bytes must still come
 * out exactly, in order, for full and ranged reads; the check of a full read must still catch a
 * wrong body; and a reader destroyed with a read in flight must close cleanly.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyReader, READ_CHUNK_BYTES } from './body-reader.js';

let dir: string;
let path: string;
// Not a multiple of the chunk size, so the last read is short.
const body = randomBytes(4 * READ_CHUNK_BYTES + 12_345);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'body-reader-'));
  path = join(dir, 'body');
  writeFileSync(path, body);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(reader: BodyReader, slowly = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of reader) {
    chunks.push(c as Buffer);
    // A slow consumer: the read ahead completes before it is asked for.
    if (slowly) await new Promise((r) => setTimeout(r, 5));
  }
  return Buffer.concat(chunks);
}

describe('BodyReader', () => {
  it('returns every byte of a full read, checked against the CRC-32, fast or slow consumer', async () => {
    for (const slowly of [false, true]) {
      const corrupt: string[] = [];
      const r = new BodyReader({ path, start: 0, end: body.length - 1, verify: { etag: 'x', crc32: crc32(body) }, onCorrupt: async (why) => void corrupt.push(why) });
      expect((await readAll(r, slowly)).equals(body)).toBe(true);
      expect(corrupt).toEqual([]);
    }
  });

  it('returns exactly the range asked for, across chunk boundaries', async () => {
    for (const [start, end] of [
      [0, 0],
      [READ_CHUNK_BYTES - 1, READ_CHUNK_BYTES],
      [1000, 3 * READ_CHUNK_BYTES + 7],
      [body.length - 5, body.length - 1],
    ] as const) {
      const r = new BodyReader({ path, start, end, onCorrupt: async () => undefined });
      expect((await readAll(r)).equals(body.subarray(start, end + 1))).toBe(true);
    }
  });

  it('fails a full read whose body does not match, and reports it once', async () => {
    const corrupt: string[] = [];
    const r = new BodyReader({ path, start: 0, end: body.length - 1, verify: { etag: 'x', crc32: (crc32(body) + 1) >>> 0 }, onCorrupt: async (why) => void corrupt.push(why) });
    await expect(readAll(r)).rejects.toThrow(/CRC-32/);
    expect(corrupt).toHaveLength(1);
  });

  it('closes cleanly when destroyed with a read in flight', async () => {
    const r = new BodyReader({ path, start: 0, end: body.length - 1, onCorrupt: async () => undefined });
    const first = await new Promise<Buffer>((resolve) => r.once('data', resolve));
    expect(first.equals(body.subarray(0, first.length))).toBe(true);
    const closed = new Promise((resolve) => r.once('close', resolve));
    r.destroy();
    await closed;
    expect(r.destroyed).toBe(true);
  });
});
