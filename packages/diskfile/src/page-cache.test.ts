/**
 * Bodies larger than keep_cache_size leave the page cache as they become durable; smaller ones
 * stay. Residency is read with util-linux's fincore(1) (mincore(2) on a mapping of the file).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { BodyWriter, FLUSH_EVERY_BYTES, WRITE_BATCH_BYTES } from './body-writer.js';

const MIB = 1024 * 1024;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'page-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function residentBytes(path: string): number {
  return Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
}

/** Writes `bytes` of varied content through a BodyWriter and returns the file and its MD5. */
async function writeBody(name: string, bytes: number, keepCacheBytes: number | undefined): Promise<{ path: string; md5: string }> {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  const md5 = createHash('md5');
  try {
    const writer = new BodyWriter(fd, keepCacheBytes);
    for (let n = 0; n < bytes; n += 64 * 1024) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, bytes - n), n % 251);
      md5.update(chunk);
      await writer.add(chunk);
    }
    await writer.finish(Buffer.alloc(0));
    expect(writer.md5Hex()).toBe(md5.copy().digest('hex'));
  } finally {
    closeSync(fd);
  }
  return { path, md5: md5.digest('hex') };
}


it('a body over keep_cache_size leaves the page cache once durable, and reads back whole', async () => {
  const size = 2 * FLUSH_EVERY_BYTES + 3 * WRITE_BATCH_BYTES + 12345;
  const dropped = await writeBody('large', size, 5 * MIB);
  expect(residentBytes(dropped.path)).toBe(0);
  expect(createHash('md5').update(readFileSync(dropped.path)).digest('hex')).toBe(dropped.md5);
});

it('without a limit, or under it, the written body stays in the page cache', async () => {
  const size = 2 * FLUSH_EVERY_BYTES + 3 * WRITE_BATCH_BYTES + 12345;
  const kept = await writeBody('kept', size, undefined);
  expect(residentBytes(kept.path)).toBeGreaterThanOrEqual(size);
  const small = await writeBody('small', 2 * MIB, 5 * MIB);
  expect(residentBytes(small.path)).toBe(2 * MIB);
});
