/**
 * A per-partition lock held by whoever consolidates `hashes.invalid` or writes `hashes` (Node has
 * no flock). Two layers:
 *  - in this process, an async mutex per lock path (so concurrent requests queue without polling);
 *  - across processes (object server workers, replicator), a lock file created with O_EXCL holding
 *    the owner's PID. A lock whose PID is dead is stale: it is broken by renaming it to a unique
 *    name (only one breaker can win that rename) and checking that the renamed file still holds
 *    the dead PID; if a live owner's fresh lock was taken by mistake it is linked back.
 * An empty lock file is one being created, or one a crash or a failed write left before its PID
 * was written: older than EMPTY_LOCK_STALE_MS, it is stale too (else it would block its partition
 * for good). Holds are short (a few small reads and writes; a rehash of up to 64 suffixes, see
 * hash-cache.ts point 7), so waiters poll every few ms.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, writeSync } from 'node:fs';
import { link, readFile, rename, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { openFd } from './io.js';
import { isCode } from './ondisk.js';

export class LockTimeoutError extends Error {
  constructor(path: string, timeoutMs: number) {
    super(`could not lock ${path} within ${timeoutMs} ms`);
    this.name = 'LockTimeoutError';
  }
}

const queues = new Map<string, Promise<void>>();

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !isCode(err, 'ESRCH');
  }
}

async function tryCreate(path: string): Promise<boolean> {
  let fd: number;
  try {
    // The creation on the thread pool, the write and the close direct (io.ts).
    fd = await openFd(path, 'wx');
  } catch (err) {
    if (isCode(err, 'EEXIST')) return false;
    throw err;
  }
  try {
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    // An empty lock left behind would block the partition until it is old enough to break.
    await unlink(path).catch(() => undefined);
    throw err;
  }
  return true;
}

/** An empty lock file older than this was left by a crash or a failed write (its creator writes its PID at once). */
export const EMPTY_LOCK_STALE_MS = 5_000;

/** Breaks the lock at `path` if its owner is dead; returns true if it may be retried at once. */
async function breakIfStale(path: string, inProcessHeld: boolean): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return true;
    throw err;
  }
  let stale: boolean;
  if (text === '') {
    // Being created right now, unless it has been empty for long.
    const st = await stat(path).catch(() => undefined);
    if (st === undefined) return true;
    stale = Date.now() - st.mtimeMs > EMPTY_LOCK_STALE_MS;
  } else {
    const pid = Number.parseInt(text, 10);
    // Our own PID while we hold the in-process mutex can only be a leftover of a failed unlink.
    stale = !Number.isInteger(pid) || (pid === process.pid ? inProcessHeld : !pidAlive(pid));
  }
  if (!stale) return false;
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return true;
    throw err;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== text) {
    // We moved someone's fresh lock: give it back (fails only if yet another process locked).
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

/**
 * Runs `fn` holding the lock `path` (in-process and cross-process). Throws LockTimeoutError
 * after `timeoutMs`, or the fs error if the lock's folder does not exist.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const previous = queues.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => mine);
  queues.set(path, tail);
  await previous;
  try {
    const deadline = Date.now() + timeoutMs;
    let delay = 1;
    while (!(await tryCreate(path))) {
      if (await breakIfStale(path, true)) continue;
      if (Date.now() > deadline) throw new LockTimeoutError(path, timeoutMs);
      await sleep(delay);
      delay = Math.min(delay * 2, 10);
    }
    try {
      return await fn();
    } finally {
      await unlink(path).catch(() => undefined);
    }
  } finally {
    release();
    if (queues.get(path) === tail) queues.delete(path);
  }
}
