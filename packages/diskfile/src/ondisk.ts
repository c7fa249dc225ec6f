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
 * Returns undefined if the folder does not exist (or was removed). Direct calls (see io.ts),
 * except that with `deferData` an obsolete .data is handed to it instead of unlinked here: freeing
 * a large file's blocks takes ext4 about a second per GiB on this VM, which a direct call would
 * spend with the whole event loop stopped (Swift's cleanup unlinks in-process and stalls alike).
 */
export function cleanupHashDirSync(
  dir: string,
  nowS: number,
  reclaimAgeS: number,
  deferData?: (path: string) => void,
): OnDiskChoice | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
  const choice = chooseFiles(names, nowS, reclaimAgeS);
  let deferred = false;
  for (const f of choice.obsolete) {
    if (deferData !== undefined && f.kind === 'data') {
      deferData(join(dir, f.name));
      deferred = true;
      continue;
    }
    try {
      unlinkSync(join(dir, f.name));
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
    }
  }
  if (choice.keep.length === 0 && choice.unexpected.length === 0 && !deferred) {
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

/**
 * cleanupHashDirSync for async callers: the same, but an obsolete .data is unlinked on the thread
 * pool (awaited), and the folder then removed if nothing in it is kept.
 */
export async function cleanupHashDir(dir: string, nowS: number, reclaimAgeS: number): Promise<OnDiskChoice | undefined> {
  const bodies: string[] = [];
  const choice = cleanupHashDirSync(dir, nowS, reclaimAgeS, (path) => bodies.push(path));
  if (bodies.length === 0) return choice;
  await Promise.all(bodies.map((path) => unlink(path).catch(absentAsUndefined)));
  if (choice !== undefined && choice.keep.length === 0 && choice.unexpected.length === 0) {
    try {
      await rmdir(dir);
      return undefined;
    } catch (err) {
      // A writer may have just put a file here; it wins.
      if (!isCode(err, 'ENOENT') && !isCode(err, 'ENOTEMPTY') && !isCode(err, 'EEXIST')) throw err;
    }
  }
  return choice;
}

export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** For a .catch(): undefined when the path is absent, any other error rethrown. */
export function absentAsUndefined(err: unknown): undefined {
  if (isCode(err, 'ENOENT')) return undefined;
  throw err;
}
