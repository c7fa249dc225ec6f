/**
 * How the diskfile layer talks to the filesystem.
 *
 * Lookups (stat, readdir, open for reading, close, the small reads and writes of a few KiB) are
 * made synchronously on the event loop; the calls that wait for the disk (fsync, fdatasync), the
 * ones that create or remove names (open with O_CREAT, mkdir, link, unlink: on ext4 they may wait
 * for a journal commit that other writers' fsyncs started; measured: 0.3 ms each on average under
 * 16 concurrent PUTs when made directly) and the big body reads and writes go to libuv's thread
 * pool.
 *
 * Why: every thread-pool round trip costs 40-50 µs of CPU here (queueing, a futex wake-up on each
 * side, the promise), the same call made directly costs 3-10 µs, and a 4 KiB PUT or GET makes
 * 10-20 of them (bench/RESULTS.md, object server). Swift makes all of its file calls, fsync
 * included, directly in its (green-threaded) process; Swiftlet keeps the ones that really block
 * (fsync, and reads of large bodies that may miss the page cache) off the loop. The cost is the
 * same as Swift's: a device whose metadata reads stall (a dying disk) stalls the process, so run
 * `workers` > 1, or one server per disk, where that matters.
 */
import { closeSync, fdatasync, open, rename, unlink, writeSync, writev, writevSync } from 'node:fs';
import { tempNameFor } from '@swiftlet/common';

/** open(2) on the thread pool, for creations (they may wait for the filesystem's journal). */
export function openFd(path: string, flags: string, mode?: number): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

/** fdatasync(2) on the thread pool (folders are fsync'd with @swiftlet/common's fsyncDir). */
export function fdatasyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Closes a file descriptor on an error path (the first error is the one reported). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already failing: the caller reports the error that brought it here.
  }
}

function rest(bufs: Buffer[], written: number): Buffer[] {
  const out: Buffer[] = [];
  let left = written;
  for (const b of bufs) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    out.push(left > 0 ? b.subarray(left) : b);
    left = 0;
  }
  return out;
}

/** Bytes up to which a batch is written directly (page-cache writes of this size take microseconds). */
export const DIRECT_WRITE_BYTES = 64 * 1024;

/**
 * Appends every buffer to `fd` (short writes continued): directly when the batch is small, on
 * the thread pool when it is large (a big write may wait for dirty-page writeback).
 */
export async function writeAllFd(fd: number, bufs: Buffer[]): Promise<void> {
  let pending = bufs.filter((b) => b.length > 0);
  while (pending.length > 0) {
    const bytes = pending.reduce((n, b) => n + b.length, 0);
    const written =
      bytes <= DIRECT_WRITE_BYTES
        ? writevSync(fd, pending)
        : await new Promise<number>((resolve, reject) => writev(fd, pending, (err, n) => (err ? reject(err) : resolve(n))));
    pending = rest(pending, written);
  }
}

/**
 * Replaces `target` (in a folder that exists) with `text` atomically, not durably: a cache a
 * crash may lose (common's writeFileAtomic, with the write and the close direct).
 */
export async function replaceSmallFile(target: string, text: string): Promise<void> {
  const tmp = tempNameFor(target);
  const fd = await openFd(tmp, 'wx', 0o644);
  try {
    try {
      // A regular file takes the whole buffer in one write(2) (or fails: ENOSPC, EIO).
      const bytes = Buffer.from(text);
      if (writeSync(fd, bytes) !== bytes.length) throw new Error(`short write to ${tmp}`);
    } finally {
      closeSync(fd);
    }
    await new Promise<void>((resolve, reject) => rename(tmp, target, (err) => (err ? reject(err) : resolve())));
  } catch (err) {
    await new Promise<void>((resolve) => unlink(tmp, () => resolve()));
    throw err;
  }
}
