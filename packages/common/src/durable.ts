/**
 * All fsync policy in one reviewed place. A file becomes visible only by rename, after its bytes
 * are on disk, and the rename itself is made durable by syncing the folder that holds it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** fsync a directory so that renames and unlinks inside it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
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
  await mkdir(dirname(target), { recursive: true });
  const tmp = tempNameFor(target);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
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
  await fsyncDir(dirname(target));
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
