/**
 * The per-partition suffix hash cache: `<partition>/hashes` (JSON, below) plus the append-only
 * journal `<partition>/hashes.invalid` (one suffix per line).
 *
 * `hashes`: {"version":1,"generation":n,"valid":true,"updated":<epoch s>,"hashes":{"<suffix>":"<md5hex>"|null}}
 * null = must be rehashed. Missing, unreadable or malformed -> treated as invalid: full rebuild.
 *
 * Why no invalidation is ever lost, and why a crash can cause a needless rehash but never a stale
 * valid hash (several processes: object server workers with the sync receiver, the replicator):
 *
 * 1. Writers never take a lock. To invalidate a suffix they open `hashes.invalid` with O_APPEND,
 *    write `suffix\n` (one write(2) of a few bytes: atomic with O_APPEND), then compare the inode
 *    of their fd with the inode the path names now. Equal: at a moment after the write the entry
 *    sat in the live journal, so any consolidation that takes the journal later reads it.
 *    Different: a consolidation renamed the journal away meanwhile (maybe after reading it), so
 *    the writer appends again to the new journal. The open fd keeps the inode alive, so an inode
 *    number cannot be reused under the comparison.
 * 2. Consolidation (under the partition lock, `partition-lock.ts`) *renames* `hashes.invalid` to
 *    `hashes.invalid.consuming`, reads it, writes `hashes` with those suffixes null (tmp file,
 *    rename over `hashes`), and only then unlinks the consuming file. A crash in between leaves
 *    the consuming file, which the next consolidation reads first. Truncation is never used, so an
 *    append can never fall between a read and a truncate.
 * 3. A write appends its suffix before publishing the file (crash safety, as Swift) AND after
 *    (a consolidation may have taken the first entry and rehashed the suffix before the file
 *    became visible). Only the second entry needs the inode check of point 1; one fd serves both.
 *    The publish is a link() from `<device>/tmp/`, and the tmp name is unlinked only after the
 *    second append: a crash in between leaves the tmp file, whose name carries policy, partition
 *    and suffix, and start-up cleanup invalidates that suffix before deleting it.
 * 4. Rehashing runs without the lock; its result is written back under the lock only if `hashes`
 *    still holds exactly the text this pass consolidated to, otherwise the pass starts over.
 *    Every consolidation that consumed entries rewrites `hashes` with a new generation (even if
 *    those suffixes were already null or the cache invalid), so a rehash whose listing predates
 *    a journaled change can never pass that check. Entries journaled during a rehash stay in the
 *    journal for the next pass.
 * 5. Cost: a write does open + 2 writes + fstat + stat + close on the journal and takes no lock
 *    (in its thread-pool job with the native module: native/diskfile.c does points 1 and 3 the
 *    same way);
 *    the lock (O_EXCL create + write + unlink of `.lock`) is taken once (point 7) or twice per
 *    getHashes pass that has something to consolidate or rehash; a settled partition is read
 *    without it (settledHashes).
 * 6. No write of `hashes` is fsync'd (Swift fsyncs every hashes.pkl and its folder). A crash
 *    leaves a prefix of each process's renames and unlinks (journaled ext4 and xfs commit
 *    metadata in order; not covered: ext4 without a journal, btrfs, NFS), so the one state that would lose an
 *    invalidation, the consuming file unlinked while `hashes` is still the older file, cannot be
 *    reached: that unlink comes after the rename that put the nulls in place. The renamed file
 *    itself holds the new text or, if its data had not reached the disk, zeros or nothing, which
 *    does not parse: a full rebuild, a cost and never a stale hash. A lost write-back leaves the
 *    consolidated nulls: a rehash. The fsyncs cost a refill's receiver ~5 ms per push (p50),
 *    waiting on the filesystem's journal commit.
 * 7. A pass with little to rehash (at most `lockedRehashMax` suffixes, 64 by default: a push's
 *    or a write's few) makes its consolidation, rehash and write-back in one hold of the lock, and
 *    writes `hashes` once, before it unlinks the consuming file. Nothing can change `hashes`
 *    meanwhile, so point 4's check has nothing to catch; the rehash follows the journal's rename,
 *    so it sees every file whose second entry the consumed journal holds (point 3), and later
 *    entries wait in the new journal. A failure or a crash before the unlink leaves the consuming
 *    file for the next consolidation. Two lock files, a write of `hashes` and the rereads of the
 *    two-step path are saved, each a wait on the filesystem's journal under a replication load.
 *    A crash's leftover consuming file or a larger rehash take the two steps; an invalid cache
 *    (a partition a push has just made) is rebuilt in one hold when it has few suffixes.
 * Power loss: journal appends are not fsync'd themselves. Ordered metadata does not make an
 * append durable before a later link (ext4 data=ordered forces out only blocks allocated in the
 * committing transaction, and delayed allocation allocates the journal's block at writeback), so
 * every native publish makes its first entry durable with its link by one syncfs: linkAndSync,
 * commitFiles and publishFiles (native/diskfile.c); the fallback without the native module
 * fdatasyncs the journal before its link (manager.ts publish).
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CONSUMING_FILE, HASH_RE, HASHES_FILE, INVALID_FILE, LOCK_FILE, SUFFIX_RE } from './layout.js';
import { cleanupHashDir, isCode, removeIfEmpty, stateSignature } from './ondisk.js';
import { fdatasyncFd, openFd, replaceSmallFile } from './io.js';
import { withLock } from './partition-lock.js';

/** open(2) flags of a journal append that must not create the journal. */
const APPEND_EXISTING = constants.O_WRONLY | constants.O_APPEND;

const VERSION = 1;
const MD5_RE = /^[0-9a-f]{32}$/;

export interface HashesCache {
  valid: boolean;
  generation: number;
  hashes: Map<string, string | null>;
}

/**
 * The cache file's JSON: undefined if it is not a JSON object; otherwise its generation, and its
 * suffix entries (not yet checked) if it has this version and says it is valid.
 */
function parseCacheFile(text: string): { generation: number; entries?: Record<string, unknown> } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { version?: unknown; generation?: unknown; valid?: unknown; hashes?: unknown };
  const generation = typeof v.generation === 'number' && Number.isSafeInteger(v.generation) ? v.generation : 0;
  const usable = v.version === VERSION && v.valid === true && typeof v.hashes === 'object' && v.hashes !== null && !Array.isArray(v.hashes);
  return usable ? { generation, entries: v.hashes as Record<string, unknown> } : { generation };
}

export function parseHashes(text: string | null): HashesCache {
  const invalid: HashesCache = { valid: false, generation: 0, hashes: new Map() };
  const file = text === null ? undefined : parseCacheFile(text);
  if (file === undefined) return invalid;
  const { generation, entries } = file;
  if (entries === undefined) return { ...invalid, generation };
  const hashes = new Map<string, string | null>();
  for (const [k, h] of Object.entries(entries)) {
    if (!SUFFIX_RE.test(k) || !(h === null || (typeof h === 'string' && MD5_RE.test(h)))) {
      return { ...invalid, generation };
    }
    hashes.set(k, h);
  }
  return { valid: true, generation, hashes };
}

/**
 * The hashes of a settled cache (valid, nothing to rehash) straight from the file's text, or
 * undefined if it is anything else. It checks what JSON.parse built and returns it: no Map and no
 * second copy. Every partition of every in-sync replication pass is read this way, by the
 * replicator for its own copy and by the object server for each peer that asks (2× faster than
 * parseHashes and a copy of its Map: 26-31 against 52 µs for 125 suffixes).
 */
export function parseSettledHashes(text: string): Record<string, string> | undefined {
  const entries = parseCacheFile(text)?.entries;
  if (entries === undefined) return undefined;
  for (const k of Object.keys(entries)) {
    const h = entries[k];
    if (typeof h !== 'string' || !SUFFIX_RE.test(k) || !MD5_RE.test(h)) return undefined;
  }
  return entries as Record<string, string>;
}

/**
 * One string for a partition's whole set of suffix hashes: MD5 of `<suffix>:<hash>\n` in suffix
 * order. Two nodes holding the same objects have the same digest, so an in-sync replication pass
 * compares one digest per partition and peer instead of every suffix (beyond Swift, which sends
 * and compares all of a partition's suffix hashes on every pass).
 */
export function hashesDigest(hashes: Readonly<Record<string, string>>): string {
  const md5 = createHash('md5');
  for (const s of Object.keys(hashes).sort()) md5.update(`${s}:${hashes[s] as string}\n`);
  return md5.digest('hex');
}

export function serializeHashes(cache: HashesCache, nowS: number): string {
  const hashes: Record<string, string | null> = {};
  let settled = cache.valid;
  for (const k of [...cache.hashes.keys()].sort()) {
    const h = cache.hashes.get(k) ?? null;
    hashes[k] = h;
    if (h === null) settled = false;
  }
  // A settled cache carries its digest right after `valid`, where settledDigest finds it without
  // parsing the rest (the key order of this object is the file's).
  const digest = settled ? hashesDigest(hashes as Record<string, string>) : undefined;
  return JSON.stringify({ version: VERSION, generation: cache.generation, valid: cache.valid, digest, updated: nowS, hashes });
}

const DIGEST_HEAD = Buffer.alloc(128);
const DIGEST_PREFIX_RE = /^\{"version":1,"generation":\d+,"valid":true,"digest":"([0-9a-f]{32})"/;

/** A small file's text, null if absent (a direct read, io.ts). */
function readTextSync(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null;
    throw err;
  }
}

/** Journals `suffix` as invalid (lock-free, see the header). The partition folder must exist. */
export async function invalidateSuffix(partDir: string, suffix: string): Promise<void> {
  const journal = await openJournal(partDir, suffix);
  try {
    journal.append(true);
  } finally {
    journal.close();
  }
}

export interface SuffixJournal {
  append(verify: boolean): void;
  /** The entries appended so far made durable (before a link that must not outlive them). */
  sync(): Promise<void>;
  close(): void;
}

/**
 * The journal of one write (or of a batch's suffixes): `append(false)` before the publish (crash safety; may land in a
 * journal a consolidation is taking, which the checked second entry makes harmless), then
 * `append(true)` after it. One open file serves both, to save syscalls on the write path. Direct
 * calls (a few microseconds each, see io.ts), except the creation of a missing journal.
 */
export async function openJournal(partDir: string, suffixes: string | readonly string[]): Promise<SuffixJournal> {
  const path = join(partDir, INVALID_FILE);
  // Several suffixes (a replication batch) go in one write.
  const line = (typeof suffixes === 'string' ? [suffixes] : suffixes).map((s) => `${s}\n`).join('');
  let fd: number;
  try {
    // The journal usually exists: a direct open that does not create.
    fd = openSync(path, APPEND_EXISTING);
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err;
    // Each consolidation renames it away, so the next write creates it: a creation, which goes to
    // the thread pool as every creation does (io.ts: inode allocation may wait on the disk).
    fd = await openFd(path, 'a');
  }
  return {
    append(verify: boolean): void {
      for (;;) {
        writeSync(fd, line);
        if (!verify) return;
        const mine = fstatSync(fd);
        const now = statSync(path, { throwIfNoEntry: false });
        if (now !== undefined && now.ino === mine.ino && now.dev === mine.dev) return;
        // Renamed away by a consolidation (maybe already read): append to the live journal.
        closeSync(fd);
        fd = openSync(path, 'a');
      }
    },
    sync: () => fdatasyncFd(fd),
    close: () => closeSync(fd),
  };
}

function lockPath(partDir: string): string {
  return join(partDir, LOCK_FILE);
}

/**
 * Under the partition lock: folds the journal into `hashes` (see the header). Returns the cache
 * and the exact text `hashes` holds afterwards (null if absent), the snapshot for write-back.
 */
export async function consolidate(partDir: string, nowS: number): Promise<{ cache: HashesCache; text: string | null }> {
  const hashesPath = join(partDir, HASHES_FILE);
  const consumingPath = join(partDir, CONSUMING_FILE);
  let text = readTextSync(hashesPath);
  const cache = parseHashes(text);
  for (;;) {
    let entries = readTextSync(consumingPath);
    const leftover = entries !== null;
    if (!leftover) {
      try {
        await rename(join(partDir, INVALID_FILE), consumingPath);
      } catch (err) {
        if (isCode(err, 'ENOENT')) break;
        throw err;
      }
      entries = readTextSync(consumingPath) ?? '';
    }
    let consumed = false;
    for (const line of (entries ?? '').split('\n')) {
      if (!SUFFIX_RE.test(line)) continue;
      consumed = true;
      if (cache.valid) cache.hashes.set(line, null);
    }
    // Consuming entries must change `hashes` even if those suffixes were already null (or the
    // cache invalid): a rehash that started before the change it stands for then fails its
    // write-back check instead of storing a hash computed from the older listing.
    if (consumed) {
      cache.generation += 1;
      text = serializeHashes(cache, nowS);
      await replaceSmallFile(hashesPath, text);
    }
    await unlink(consumingPath).catch((err: unknown) => {
      if (!isCode(err, 'ENOENT')) throw err;
    });
    if (!leftover) break;
  }
  return { cache, text };
}

/**
 * MD5 of the suffix's hash folders, after cleanup: for each hash folder in name order that still
 * defines a state, `<hash>:<state files>\n`. Returns undefined if the suffix folder is gone (or
 * was removed because it became empty).
 */
export async function hashSuffix(suffixDir: string, nowS: number, reclaimAgeS: number): Promise<string | undefined> {
  let names: string[];
  try {
    names = readdirSync(suffixDir);
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return undefined;
    throw err;
  }
  names.sort();
  const md5 = createHash('md5');
  let remaining = 0;
  for (const name of names) {
    if (!HASH_RE.test(name)) {
      remaining++;
      continue;
    }
    const choice = await cleanupHashDir(join(suffixDir, name), nowS, reclaimAgeS);
    if (choice === undefined) continue;
    remaining++;
    const sig = stateSignature(choice);
    if (sig !== '') md5.update(`${name}:${sig}\n`);
  }
  if (remaining === 0 && (await removeIfEmpty(suffixDir))) return undefined;
  return md5.digest('hex');
}

export interface GetHashesOptions {
  nowS: number;
  reclaimAgeS: number;
  /** Re-list the partition for suffix folders the cache does not know. */
  listdir: boolean;
  recalculate?: string[];
  /**
   * Rehashes of at most this many suffixes are made in one hold of the lock (header, point 7);
   * default 64; 0: always the two steps.
   */
  lockedRehashMax?: number;
  /**
   * Tests: runs after the rehash, before the write-back (to interleave other writers); in the
   * one-hold path, with the lock held.
   */
  afterRehash?: (attempt: number) => Promise<void>;
}

export interface GetHashesResult {
  hashes: Record<string, string>;
  /** Suffixes rehashed by this call. */
  hashed: number;
}

function listSuffixDirs(partDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(partDir);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return [];
    throw err;
  }
  return names.filter((n) => SUFFIX_RE.test(n));
}

/** A journal waits to be consolidated (checked in the order settledHashes explains). */
function journalPending(partDir: string): boolean {
  return (
    statSync(join(partDir, INVALID_FILE), { throwIfNoEntry: false }) !== undefined ||
    statSync(join(partDir, CONSUMING_FILE), { throwIfNoEntry: false }) !== undefined
  );
}

/**
 * The cache as it stands, read without the lock, when nothing is left to do: no journal to
 * consolidate (checked in that order: `hashes.invalid`, then `hashes.invalid.consuming`, so that a
 * consolidation renaming one into the other between the two checks is seen), `hashes` valid and
 * without a suffix to rehash. A consolidation that took entries wrote `hashes` (with those
 * suffixes null) before it removed the consuming file, so a `hashes` read after both checks holds
 * every change journaled before them; later ones are for the next pass, as under the lock.
 * With `listdir` (the periodic re-listing) the partition folder is listed too, and a suffix folder
 * the cache does not know sends the call down the locked path. Undefined: take the locked path.
 * This is an in-sync replication pass's common case, and it spares each REPLICATE two lock files
 * (a create and an unlink each) per partition.
 */
function settledHashes(partDir: string, listdir: boolean): Record<string, string> | undefined {
  if (journalPending(partDir)) return undefined;
  const text = readTextSync(join(partDir, HASHES_FILE));
  if (text === null) return undefined;
  const result = parseSettledHashes(text);
  if (result === undefined) return undefined;
  // The periodic re-listing: a suffix folder the cache does not know needs the locked path.
  if (listdir && readdirSync(partDir).some((n) => SUFFIX_RE.test(n) && !Object.hasOwn(result, n))) return undefined;
  return result;
}

/**
 * The digest of a settled partition (the same checks as settledHashes) read from the head of its
 * cache file, without parsing the suffix entries; a cache written before digests existed is parsed
 * and digested. Undefined: the partition is not settled, take getPartitionHashes.
 */
export function settledDigest(partDir: string): string | undefined {
  if (journalPending(partDir)) return undefined;
  const path = join(partDir, HASHES_FILE);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if (isCode(err, 'ENOENT')) return undefined;
    throw err;
  }
  // The head is enough when it holds the digest (the whole file is ~40 bytes per suffix).
  let head: string;
  try {
    const n = readSync(fd, DIGEST_HEAD, 0, DIGEST_HEAD.length, 0);
    head = DIGEST_HEAD.toString('latin1', 0, n);
  } finally {
    closeSync(fd);
  }
  const found = DIGEST_PREFIX_RE.exec(head);
  if (found) return found[1];
  const text = readTextSync(path);
  const hashes = text === null ? undefined : parseSettledHashes(text);
  return hashes === undefined ? undefined : hashesDigest(hashes);
}

const LOCKED_REHASH_MAX = 64;

/**
 * Rehashes `todo` (null entries of `hashes`) one suffix after the other: the listings are direct
 * calls (io.ts), so running several at once would only interleave their rmdirs.
 */
async function rehashSuffixes(partDir: string, hashes: Map<string, string | null>, todo: readonly string[], opts: GetHashesOptions): Promise<void> {
  for (const s of todo) {
    const h = await hashSuffix(join(partDir, s), opts.nowS, opts.reclaimAgeS);
    if (h === undefined) hashes.delete(s);
    else hashes.set(s, h);
  }
}

function sortedHashes(hashes: Map<string, string | null>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const s of [...hashes.keys()].sort()) result[s] = hashes.get(s) as string;
  return result;
}

/**
 * Under the lock: consolidation, rehash and write-back at once (header, point 7). Undefined, with
 * nothing changed, when the partition is not in that case.
 */
async function rehashInOneHold(partDir: string, opts: GetHashesOptions, max: number): Promise<GetHashesResult | undefined> {
  const journalPath = join(partDir, INVALID_FILE);
  const consumingPath = join(partDir, CONSUMING_FILE);
  if (statSync(consumingPath, { throwIfNoEntry: false }) !== undefined) return undefined;
  const hashesPath = join(partDir, HASHES_FILE);
  const cache = parseHashes(readTextSync(hashesPath));
  // An invalid cache (none yet: a partition a push has just made) is rebuilt from the listing.
  const hashes = cache.valid ? new Map(cache.hashes) : new Map<string, string | null>();
  const nullify = (suffixes: Iterable<string>): void => {
    for (const s of suffixes) if (SUFFIX_RE.test(s)) hashes.set(s, null);
  };
  nullify(opts.recalculate ?? []);
  if (opts.listdir || !cache.valid) nullify(listSuffixDirs(partDir).filter((s) => !hashes.has(s)));
  // Sized before the journal is taken, so that a larger pass leaves everything to the two steps.
  const pending = new Set((readTextSync(journalPath) ?? '').split('\n'));
  let todoCount = 0;
  for (const [s, h] of hashes) if (h === null || pending.has(s)) todoCount++;
  for (const s of pending) if (SUFFIX_RE.test(s) && !hashes.has(s)) todoCount++;
  if (todoCount > max) return undefined;
  let took = true;
  try {
    await rename(journalPath, consumingPath);
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err;
    took = false;
  }
  if (took) nullify((readTextSync(consumingPath) ?? '').split('\n'));
  const todo = [...hashes].filter(([, h]) => h === null).map(([s]) => s);
  // Nothing taken, nothing to rehash, and the file already says so: nothing to write.
  if (todo.length === 0 && !took && cache.valid) return { hashes: sortedHashes(hashes), hashed: 0 };
  await rehashSuffixes(partDir, hashes, todo, opts);
  await opts.afterRehash?.(0);
  await replaceSmallFile(hashesPath, serializeHashes({ valid: true, generation: cache.generation + 1, hashes }, opts.nowS));
  if (took) {
    await unlink(consumingPath).catch((err: unknown) => {
      if (!isCode(err, 'ENOENT')) throw err;
    });
  }
  return { hashes: sortedHashes(hashes), hashed: todo.length };
}

/** Swift's get_hashes for a partition folder that exists (throws ENOENT-coded errors otherwise). */
export async function getPartitionHashes(partDir: string, opts: GetHashesOptions): Promise<GetHashesResult> {
  if ((opts.recalculate ?? []).length === 0) {
    const settled = settledHashes(partDir, opts.listdir);
    if (settled !== undefined) return { hashes: settled, hashed: 0 };
  }
  const max = opts.lockedRehashMax ?? LOCKED_REHASH_MAX;
  if (max > 0) {
    const done = await withLock(lockPath(partDir), () => rehashInOneHold(partDir, opts, max));
    if (done !== undefined) return done;
  }
  for (let attempt = 0; ; attempt++) {
    const snap = await withLock(lockPath(partDir), () => consolidate(partDir, opts.nowS));
    const hashes = snap.cache.valid ? new Map(snap.cache.hashes) : new Map<string, string | null>();
    let changed = !snap.cache.valid;
    if (opts.listdir || !snap.cache.valid) {
      for (const s of listSuffixDirs(partDir)) {
        if (!hashes.has(s)) {
          hashes.set(s, null);
          changed = true;
        }
      }
    }
    for (const s of opts.recalculate ?? []) {
      if (SUFFIX_RE.test(s)) hashes.set(s, null);
    }
    const todo = [...hashes].filter(([, h]) => h === null).map(([s]) => s);
    if (todo.length > 0) changed = true;
    await rehashSuffixes(partDir, hashes, todo, opts);
    await opts.afterRehash?.(attempt);
    const result = sortedHashes(hashes);
    if (!changed) return { hashes: result, hashed: 0 };
    const written = await withLock(lockPath(partDir), async () => {
      const hashesPath = join(partDir, HASHES_FILE);
      if (readTextSync(hashesPath) !== snap.text) return false;
      const cache: HashesCache = { valid: true, generation: snap.cache.generation + 1, hashes };
      await replaceSmallFile(hashesPath, serializeHashes(cache, opts.nowS));
      return true;
    });
    // Someone consolidated meanwhile: start over (bounded; the journal keeps what we miss).
    if (written || attempt >= 5) return { hashes: result, hashed: todo.length };
  }
}
