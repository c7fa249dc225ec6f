import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EMPTY_LOCK_STALE_MS, LockTimeoutError, withLock } from './partition-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swiftlet-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('partition lock', () => {
  it('an empty lock file is one being created while fresh, and stale once old (a crash or a failed write left it)', async () => {
    const lock = join(dir, '.lock');
    await writeFile(lock, '');
    // Fresh: waited on, not broken.
    await expect(withLock(lock, async () => 'got it', 100)).rejects.toBeInstanceOf(LockTimeoutError);
    // Left for longer than a creator ever takes to write its PID: broken, and the lock taken.
    const old = (Date.now() - EMPTY_LOCK_STALE_MS - 1000) / 1000;
    await utimes(lock, old, old);
    expect(await withLock(lock, async () => 'got it', 1000)).toBe('got it');
    expect(await readdir(dir)).toEqual([]);
  });

  it('a lock held by a dead process is broken; one held by a live one is waited on', async () => {
    const lock = join(dir, '.lock');
    await writeFile(lock, '4194305\n'); // no such PID: above Linux's PID_MAX_LIMIT (2^22)
    expect(await withLock(lock, async () => 1, 1000)).toBe(1);
    await writeFile(lock, `${process.ppid}\n`);
    await expect(withLock(lock, async () => 2, 100)).rejects.toBeInstanceOf(LockTimeoutError);
  });
});
