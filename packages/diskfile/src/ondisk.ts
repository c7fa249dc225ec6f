/**
 * Which files of a hash folder survive (Swift's get_ondisk_files / cleanup_ondisk_files, replicated
 * policy, without content-type timestamps):
 *  - the newest `.ts` or `.data` defines the state; a `.ts` wins a tie with a `.data`;
 *  - everything older than (or, for non-`.ts`, equal to) a winning `.ts` is obsolete;
 *  - with a winning `.data`: older `.data`, all `.ts`, and `.meta` not newer than it are obsolete;
 *    of the newer `.meta`s only the newest is kept;
 *  - a `.meta` beside a tombstone (or alone) is kept, ignored, until older than reclaim_age;
 *  - a tombstone older than reclaim_age is obsolete;
 *  - names that do not parse are "unexpected" and left alone.
 */
import { readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseFileName, type OnDiskFile } from './layout.js';

export interface OnDiskChoice {
  /** The winning `.data` (object state). */
  data?: OnDiskFile;
  /** A `.meta` newer than the winning `.data`. */
  meta?: OnDiskFile;
  /** The winning `.ts` (tombstone state). */
  ts?: OnDiskFile;
  /** Files to keep on disk (state files plus not-yet-reclaimable orphan `.meta`). */
  keep: OnDiskFile[];
  obsolete: OnDiskFile[];
  unexpected: string[];
}

function newer(a: OnDiskFile, b: OnDiskFile): number {
  return b.timestamp.compare(a.timestamp);
}

export function chooseFiles(names: Iterable<string>, nowS: number, reclaimAgeS: number): OnDiskChoice {
  const files: OnDiskFile[] = [];
  const unexpected: string[] = [];
  for (const name of names) {
    const f = parseFileName(name);
    if (f) files.push(f);
    else unexpected.push(name);
  }
  files.sort(newer);
  const newestOf = (kind: OnDiskFile['kind']): OnDiskFile | undefined => files.find((f) => f.kind === kind);
  const ts = newestOf('ts');
  const data = newestOf('data');
  const meta = newestOf('meta');
  const reclaimBefore = nowS - reclaimAgeS;
  const keep: OnDiskFile[] = [];
  const choice: OnDiskChoice = { keep, obsolete: [], unexpected };

  if (ts && (!data || ts.timestamp.compare(data.timestamp) >= 0)) {
    if (ts.timestamp.seconds >= reclaimBefore) {
      keep.push(ts);
      choice.ts = ts;
    }
    if (meta && meta.timestamp.isNewerThan(ts.timestamp) && meta.timestamp.seconds >= reclaimBefore) keep.push(meta);
  } else if (data) {
    keep.push(data);
    choice.data = data;
    if (meta && meta.timestamp.isNewerThan(data.timestamp)) {
      keep.push(meta);
      choice.meta = meta;
    }
  } else if (meta && meta.timestamp.seconds >= reclaimBefore) {
    keep.push(meta);
  }
  const kept = new Set(keep);
  choice.obsolete = files.filter((f) => !kept.has(f));
  return choice;
}

/** The state-defining part of a choice, as fed to the suffix hash ('' when nothing defines a state). */
export function stateSignature(choice: OnDiskChoice): string {
  if (choice.ts) return `${choice.ts.timestamp.internal}.ts`;
  if (choice.data) {
    const meta = choice.meta ? `${choice.meta.timestamp.internal}.meta` : '';
    return `${meta}${choice.data.timestamp.internal}.data`;
  }
  return '';
}

/**
 * Lists a hash folder, unlinks obsolete files and removes the folder if it ends up empty.
 * Returns undefined if the folder does not exist (or was removed). Direct calls (see io.ts).
 *
 * With `handOver`, when an obsolete file is a .data, nothing is unlinked here: every obsolete file
 * is handed over instead, the .data files first, for cleanupHashDir to unlink off the event loop
 * (freeing a large file's blocks takes ext4 ~0.4 s per GiB here, 1 s under load, with the whole
 * loop stopped if done directly; Swift's cleanup unlinks in-process and stalls alike). The caller
 * must unlink the .data files before the others: a listing made in between must never find an
 * obsolete .data without the newer file that made it obsolete (a reclaimed tombstone, say), or
 * it would see a deleted object again.
 */
export function cleanupHashDirSync(
  dir: string,
  nowS: number,
  reclaimAgeS: number,
  handOver?: (obsolete: string[]) => void,
): OnDiskChoice | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
  const choice = chooseFiles(names, nowS, reclaimAgeS);
  if (handOver !== undefined && choice.obsolete.some((f) => f.kind === 'data')) {
    const bodiesFirst = [...choice.obsolete].sort((a, b) => Number(b.kind === 'data') - Number(a.kind === 'data'));
    handOver(bodiesFirst.map((f) => join(dir, f.name)));
    return choice;
  }
  for (const f of choice.obsolete) unlinkIfPresent(join(dir, f.name));
  if (choice.keep.length === 0 && choice.unexpected.length === 0) {
    try {
      rmdirSync(dir);
      return undefined;
    } catch (err) {
      // A writer may have just put a file here; it wins.
      if (!isCode(err, 'ENOENT') && !isCode(err, 'ENOTEMPTY') && !isCode(err, 'EEXIST')) throw err;
    }
  }
  return choice;
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err;
  }
}

/**
 * cleanupHashDirSync for async callers: the same, but obsolete .data files are unlinked on the
 * thread pool (awaited), then the other obsolete files, then the folder if nothing in it is kept.
 */
export async function cleanupHashDir(dir: string, nowS: number, reclaimAgeS: number): Promise<OnDiskChoice | undefined> {
  let handed: string[] = [];
  const choice = cleanupHashDirSync(dir, nowS, reclaimAgeS, (obsolete) => (handed = obsolete));
  if (choice === undefined || handed.length === 0) return choice;
  const isBody = (path: string): boolean => path.endsWith('.data');
  await Promise.all(handed.filter(isBody).map((path) => unlink(path).catch(absentAsUndefined)));
  for (const path of handed.filter((p) => !isBody(p))) unlinkIfPresent(path);
  if (choice.keep.length === 0 && choice.unexpected.length === 0 && (await removeIfEmpty(dir))) return undefined;
  return choice;
}

/**
 * Removes a folder found empty, on the thread pool: true when it is gone (removed here, or
 * already by another cleanup), false when a writer has just put a file in it (the writer wins).
 */
export async function removeIfEmpty(dir: string): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch (err) {
    if (isCode(err, 'ENOENT')) return true;
    if (isCode(err, 'ENOTEMPTY') || isCode(err, 'EEXIST')) return false;
    throw err;
  }
}

export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** For a .catch(): undefined when the path is absent, any other error rethrown. */
export function absentAsUndefined(err: unknown): undefined {
  if (isCode(err, 'ENOENT')) return undefined;
  throw err;
}
