/**
 * All fsync policy in one reviewed place. A file becomes visible only by rename, after its bytes
 * are on disk, and the rename itself is made durable by syncing the folder that holds it; the
 * one exception, writeFileAtomic, is for caches a crash may lose.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsync, openSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * fsync a directory so that renames and unlinks inside it survive a crash. Opening and closing
 * the folder are direct calls (microseconds; a thread-pool round trip costs ~45 µs of CPU, and
 * this runs on every object write); only the fsync, which waits for the disk, uses the pool.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
  } finally {
    closeSync(fd);
  }
}

/** A name for a temporary file beside `target` that no other writer can pick. */
export function tempNameFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Writes `data` to `target` atomically and durably: temporary file in the same folder, write,
 * fsync, rename over the target, fsync the folder. A crash leaves the old file or the new one.
 */
export async function writeFileDurable(target: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await writeFileReplacing(target, data, mode, true);
}

/**
 * Writes `data` to `target` atomically but without waiting for the disk, for files a crash may
 * lose (caches a daemon rewrites anyway, as Swift's recon cache with `fsync=False`): a reader sees
 * the old file or the new one, never a part of either.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await writeFileReplacing(target, data, mode, false);
}

async function writeFileReplacing(target: string, data: string | Uint8Array, mode: number, durable: boolean): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const tmp = tempNameFor(target);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (durable) await fsyncDir(dirname(target));
}

/**
 * mkdir -p that also fsyncs every folder it created and the parent of the topmost one, so that a
 * freshly created path survives a crash (Swift's `makedirs_count` + fsync of new parents).
 */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  let d = dir;
  for (;;) {
    await fsyncDir(d);
    if (d === first) break;
    d = dirname(d);
  }
  await fsyncDir(dirname(first));
}
