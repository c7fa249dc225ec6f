/**
 * Replication helpers: the sender's listing, the receiver's wanted list, the tar receiver, and
 * the handoff removal. Files travel as `<suffix>/<hash>/<timestamp>.<kind>` (the file format in
 * metadata-file.ts carries body and metadata together).
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readdirSync } from 'node:fs';
import { mkdir, rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { BadRequestError, ClientDisconnectError, InsufficientStorageError, StoreError, Timestamp } from '@swiftlet/common';
import { invalidateSuffix, openJournal } from './hash-cache.js';
import { fdatasyncFd, writeAllFd } from './io.js';
import { type DiskfileAddon, nativeAddon } from './native.js';
import { dropPageCache } from './page-cache.js';
import { CONSUMING_FILE, HASH_RE, HASHES_FILE, INVALID_FILE, LOCK_FILE, parseFileName, partitionDir, partitionOfHash, SUFFIX_RE } from './layout.js';
import type { DiskFileManager } from './manager.js';
import { BODY_CRC32_KEY, MAX_METADATA_BYTES, parseCrc32, parseFileBuffer, TRAILER_BYTES } from './metadata-file.js';
import { absentAsUndefined, chooseFiles, cleanupHashDir, isCode, type OnDiskChoice } from './ondisk.js';
import { withLock } from './partition-lock.js';
import type { ReadChecksum, SuffixFiles } from './types.js';

/** Swift's MAX_FILE_SIZE plus room for the metadata trailer. */
export const DEFAULT_MAX_ENTRY_BYTES = 5368709122 + MAX_METADATA_BYTES + TRAILER_BYTES;

/** Hash folders published at once by receiveTar without the native module. */
const PUBLISH_CONCURRENCY = 8;

/**
 * With the native module, received files up to this size are held in memory and created many per
 * thread-pool job, at most BATCH_BYTES or BATCH_FILES at a time (the memory a push may hold).
 */
const SMALL_ENTRY_BYTES = 64 * 1024;
const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_FILES = 256;

const PATH_RE = /^([0-9a-f]{3})\/([0-9a-f]{32})\/([^/]+)$/;

export interface FilePath {
  suffix: string;
  hash: string;
  file: string;
}

/** Parses `<suffix>/<hash>/<timestamp>.<kind>`; undefined with a reason if it is not one. */
export function parseFilePath(path: string): FilePath | string {
  const m = PATH_RE.exec(path);
  if (!m) return 'not <suffix>/<hash>/<file>';
  const [, suffix, hash, file] = m as unknown as [string, string, string, string];
  if (hash.slice(-3) !== suffix) return `suffix ${suffix} does not match hash ${hash}`;
  if (!parseFileName(file)) return `file name ${file} is not <timestamp>.data|.ts|.meta`;
  return { suffix, hash, file };
}

function checkedPath(path: string, what: string): FilePath {
  const p = parseFilePath(path);
  if (typeof p === 'string') throw new BadRequestError(`${what} "${path.slice(0, 200)}": ${p}`);
  return p;
}

/** A folder's names: a lookup, made directly (io.ts); [] for a folder that is not there. */
function listNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return [];
    throw err;
  }
}

/**
 * Every file cleanup keeps: the state-defining ones and a `.meta` not yet reclaimable (a POST that
 * reached this node after the data left it must travel too).
 */
function keptFiles(choice: OnDiskChoice): string[] {
  return choice.keep.map((f) => f.name).sort();
}

export async function* listSuffixFiles(
  mgr: DiskFileManager,
  device: string,
  partition: number,
  policyIndex: number,
  suffixes: string[],
): AsyncIterable<SuffixFiles> {
  const partDir = partitionDir(await mgr.checkDevice(device), policyIndex, partition);
  for (const suffix of suffixes) {
    if (!SUFFIX_RE.test(suffix)) throw new BadRequestError(`invalid suffix "${suffix}"`);
    const hashes = listNames(join(partDir, suffix)).filter((h) => HASH_RE.test(h)).sort();
    for (const hash of hashes) {
      const choice = await cleanupHashDir(join(partDir, suffix, hash), mgr.nowS(), mgr.reclaimAgeS);
      if (!choice) continue;
      const files = keptFiles(choice);
      if (files.length > 0) yield { suffix, hash, files };
    }
  }
}

export async function missingFiles(
  mgr: DiskFileManager,
  device: string,
  partition: number,
  policyIndex: number,
  offered: Iterable<string>,
): Promise<string[]> {
  const partDir = partitionDir(await mgr.checkDevice(device), policyIndex, partition);
  const byHash = new Map<string, { suffix: string; files: string[] }>();
  for (const path of offered) {
    const p = checkedPath(path, 'offered file');
    const entry = byHash.get(p.hash) ?? { suffix: p.suffix, files: [] };
    entry.files.push(p.file);
    byHash.set(p.hash, entry);
  }
  const wanted: string[] = [];
  // A partition this device lacks (a wiped or new device) has none of them: one lookup, not one
  // per file.
  const partitionHere = existsSync(partDir);
  for (const [hash, { suffix, files }] of byHash) {
    const have = new Set(partitionHere ? listNames(join(partDir, suffix, hash)) : []);
    const choice = chooseFiles([...have, ...files], mgr.nowS(), mgr.reclaimAgeS);
    const kept = new Set(choice.keep.map((f) => f.name));
    for (const file of new Set(files)) {
      if (!have.has(file) && kept.has(file)) wanted.push(`${suffix}/${hash}/${file}`);
    }
  }
  return wanted;
}

/**
 * Keeps the last `hold` bytes of a stream unhashed so the trailer can be excluded at the end. It
 * keeps a CRC-32 of the body: files record theirs (BODY_CRC32_KEY); one that does not is checked
 * against its MD5 ETag from the staged copy (md5OfStaged).
 */
class TrailingHasher {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  crc = 0;
  constructor(private readonly hold: number) {}

  update(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.pendingBytes - (this.pending[0]?.length ?? 0) >= this.hold) {
      const first = this.pending.shift() as Buffer;
      this.pendingBytes -= first.length;
      this.crc = crc32(first, this.crc);
    }
  }

  /** The bytes still held (at least `hold` of the end, or everything if shorter). */
  tail(): Buffer {
    return Buffer.concat(this.pending, this.pendingBytes);
  }
}

interface Staged {
  tmp: string;
  suffix: string;
  hash: string;
  file: string;
  /** Bytes received for the file (its tar entry's size). */
  size: number;
  /** Its data is durable already (a large file in the native path, synced as it was staged). */
  synced: boolean;
}

/** Where a received entry's bytes go while it is checked. */
interface EntrySink {
  write(bufs: Buffer[]): Promise<void>;
  /** The MD5 (hex) of the first `bodyLength` bytes written. */
  md5(bodyLength: number): Promise<string>;
}

function fileSink(fd: number, tmp: string): EntrySink {
  return { write: (bufs) => writeAllFd(fd, bufs), md5: (bodyLength) => md5OfStaged(tmp, bodyLength) };
}

function memorySink(chunks: Buffer[]): EntrySink {
  return {
    write: async (bufs) => {
      chunks.push(...bufs);
    },
    md5: async (bodyLength) => {
      const md5 = createHash('md5');
      let left = bodyLength;
      for (const c of chunks) {
        if (left <= 0) break;
        md5.update(left >= c.length ? c : c.subarray(0, left));
        left -= c.length;
      }
      return md5.digest('hex');
    },
  };
}

/**
 * Small received files, created together by the native module's writeFiles. Each body is copied
 * out of the stream's chunks (which may be slices of much larger buffers) as it is added.
 */
class SmallFileBatch {
  private paths: string[] = [];
  private bodies: Buffer[] = [];
  private lengths: number[] = [];
  private bytes = 0;
  constructor(private readonly native: DiskfileAddon) {}

  async add(tmp: string, chunks: Buffer[]): Promise<void> {
    const body = chunks.length === 1 ? Buffer.from(chunks[0] as Buffer) : Buffer.concat(chunks);
    this.paths.push(tmp);
    this.bodies.push(body);
    this.lengths.push(body.length);
    this.bytes += body.length;
    if (this.bytes >= BATCH_BYTES || this.paths.length >= BATCH_FILES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.paths.length === 0) return;
    const { paths, lengths } = this;
    const bodies = this.bodies.length === 1 ? (this.bodies[0] as Buffer) : Buffer.concat(this.bodies, this.bytes);
    this.paths = [];
    this.bodies = [];
    this.lengths = [];
    this.bytes = 0;
    await this.native.writeFiles(paths, bodies, lengths);
  }
}

/** Reads `tar` to the end, validating every entry into tmp files (synced when published). */
async function stageEntries(
  mgr: DiskFileManager,
  devPath: string,
  partition: number,
  policyIndex: number,
  tar: NodeJS.ReadableStream,
  opts: { maxEntryBytes: number; partPower?: number },
  staged: Staged[],
): Promise<void> {
  // Loaded by the first push received, not by every program that imports the diskfile package
  // (a replicator run with --once starts ~17 ms of CPU sooner).
  const tarStream = await import('tar-stream');
  const extract = tarStream.extract();
  const native = nativeAddon();
  const batch = native ? new SmallFileBatch(native) : undefined;
  let lastBytes: Buffer = Buffer.alloc(0);
  let sourceError: unknown;
  let stop = false;
  let extractError: unknown;
  extract.on('error', (err: unknown) => {
    extractError ??= err;
  });
  // Fed by events, not for-await: breaking a for-await would destroy the request (and the socket
  // the 400 answer must go out on). When we stop early the rest of the stream is drained unread.
  let detach = (): void => undefined;
  const feeder = new Promise<void>((resolve) => {
    const onData = (raw: Buffer | string): void => {
      if (stop) return;
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      lastBytes = chunk.length >= 1024 ? chunk.subarray(chunk.length - 1024) : Buffer.concat([lastBytes, chunk]).subarray(-1024);
      if (!extract.write(chunk)) {
        tar.pause();
        extract.once('drain', () => tar.resume());
      }
    };
    const onEnd = (): void => {
      detach();
      if (!stop) (extract as unknown as { end(): void }).end(); // streamx typings want a chunk argument
      resolve();
    };
    const onError = (err: unknown): void => {
      detach();
      sourceError = err;
      extract.destroy(err instanceof Error ? err : new Error(String(err)));
      resolve();
    };
    const onClose = (): void => {
      if (!ended) onError(new Error('the stream closed before its end'));
    };
    let ended = false;
    const onEndFlag = (): void => {
      ended = true;
      onEnd();
    };
    detach = () => {
      tar.removeListener('data', onData);
      tar.removeListener('end', onEndFlag);
      tar.removeListener('error', onError);
      tar.removeListener('close', onClose);
      // The server answers 400 while the rest drains; a later socket error must not go unhandled.
      if (tar.listenerCount('error') === 0) tar.on('error', () => undefined);
      resolve();
    };
    tar.on('data', onData);
    tar.on('end', onEndFlag);
    tar.on('error', onError);
    tar.on('close', onClose);
    tar.resume();
  });
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const name = h.name;
      const what = `tar entry "${name.slice(0, 200)}"`;
      if (h.type !== 'file') throw new BadRequestError(`${what}: not a regular file (${h.type})`);
      const p = checkedPath(name, 'tar entry');
      if (opts.partPower !== undefined && partitionOfHash(p.hash, opts.partPower) !== partition) {
        throw new BadRequestError(`${what}: hash does not belong to partition ${partition}`);
      }
      if (h.size > opts.maxEntryBytes) throw new BadRequestError(`${what}: ${h.size} bytes exceed the limit of ${opts.maxEntryBytes}`);
      const isData = parseFileName(p.file)?.kind === 'data';
      const body = entry as AsyncIterable<Buffer>;
      if (batch !== undefined && h.size <= SMALL_ENTRY_BYTES) {
        const chunks: Buffer[] = [];
        await receiveEntry(body, memorySink(chunks), h.size, what, p, isData, mgr.readChecksum);
        const tmp = await mgr.tmpPath(devPath, policyIndex, partition, p.suffix);
        staged.push({ tmp, ...p, size: h.size, synced: false });
        await batch.add(tmp, chunks);
        continue;
      }
      const { tmp, fd } = await mgr.openTmp(devPath, policyIndex, partition, p.suffix);
      const file: Staged = { tmp, ...p, size: h.size, synced: false };
      staged.push(file);
      try {
        await receiveEntry(body, fileSink(fd, tmp), h.size, what, p, isData, mgr.readChecksum);
        if (batch !== undefined) {
          // The batch's syncfs would write it too; a large file is synced (and leaves the page
          // cache, as a PUT's body does) while the stream goes on.
          await fdatasyncFd(fd);
          if (mgr.keepCacheSize !== undefined && h.size > mgr.keepCacheSize) dropPageCache(fd, 0, 0);
          file.synced = true;
        }
      } finally {
        closeSync(fd);
      }
    }
    await batch?.flush();
  } catch (err) {
    stop = true;
    detach();
    tar.resume(); // drain what is left, unread
    extract.destroy(new Error('receive aborted'));
    await feeder;
    // An entry stream fails with a generic "destroyed" error when the extractor itself failed.
    const cause = extractError ?? err;
    if (sourceError !== undefined) throw new ClientDisconnectError(`tar stream failed: ${(sourceError as Error).message}`);
    if (err instanceof StoreError) throw err;
    if (isCode(err, 'ENOSPC')) throw new InsufficientStorageError('device is full');
    if (cause instanceof Error && /Unexpected end of data/.test(cause.message)) throw new BadRequestError('truncated tar stream');
    if (cause instanceof Error && 'syscall' in cause) throw cause;
    throw new BadRequestError(`bad tar stream: ${cause instanceof Error ? cause.message : String(cause)}`);
  } finally {
    await feeder;
  }
  if (sourceError !== undefined) throw new ClientDisconnectError(`tar stream failed: ${(sourceError as Error).message}`);
  // A tar ends with two zero blocks; without them the stream was cut at an entry boundary.
  if (lastBytes.length < 1024 || lastBytes.some((b) => b !== 0)) throw new BadRequestError('truncated tar stream');
}

async function md5OfStaged(tmp: string, bodyLength: number): Promise<string> {
  const md5 = createHash('md5');
  if (bodyLength > 0) {
    for await (const chunk of createReadStream(tmp, { start: 0, end: bodyLength - 1, highWaterMark: 1 << 20 })) md5.update(chunk as Buffer);
  }
  return md5.digest('hex');
}

async function receiveEntry(
  entry: AsyncIterable<Buffer>,
  sink: EntrySink,
  size: number,
  what: string,
  p: FilePath,
  isData: boolean,
  checksum: ReadChecksum,
): Promise<void> {
  const hasher = new TrailingHasher(MAX_METADATA_BYTES + TRAILER_BYTES);
  let got = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  for await (const chunk of entry) {
    got += chunk.length;
    hasher.update(chunk);
    batch.push(chunk);
    batchBytes += chunk.length;
    if (batchBytes >= 256 * 1024) {
      await sink.write(batch);
      batch = [];
      batchBytes = 0;
    }
  }
  await sink.write(batch);
  if (got !== size) throw new BadRequestError(`${what}: truncated`);
  const tail = hasher.tail();
  let parsed;
  try {
    parsed = parseFileBuffer(tail, what);
  } catch (err) {
    throw new BadRequestError(`${what}: ${(err as Error).message.replace(`${what}: `, '')}`);
  }
  const bodyInTail = parsed.bodyLength - (got - tail.length);
  const bodyLength = parsed.bodyLength;
  const md = parsed.metadata;
  const ts = Timestamp.tryParse(md['X-Timestamp']);
  const fileTs = parseFileName(p.file)?.timestamp;
  if (!ts || !fileTs || !ts.equals(fileTs)) throw new BadRequestError(`${what}: X-Timestamp does not match the file name`);
  if (isData) {
    if (md['Content-Length'] !== String(bodyLength)) throw new BadRequestError(`${what}: Content-Length does not match the body`);
    const recorded = md[BODY_CRC32_KEY];
    const want = recorded === undefined ? undefined : parseCrc32(recorded);
    if (want === null) throw new BadRequestError(`${what}: malformed ${BODY_CRC32_KEY}`);
    if (want !== undefined && checksum === 'crc32') {
      if (crc32(tail.subarray(0, bodyInTail), hasher.crc) !== want) throw new BadRequestError(`${what}: body CRC-32 does not match the recorded one`);
    } else if (md['ETag'] !== (await sink.md5(bodyLength))) {
      throw new BadRequestError(`${what}: body MD5 does not match its ETag`);
    }
  } else if (bodyLength !== 0) {
    throw new BadRequestError(`${what}: a .ts or .meta file has no body`);
  }
}

/**
 * The native path: every file the folder does not already have (or would not keep) is published
 * by one job, which makes the staged data durable, renames each file into place and makes the
 * names durable with two syncfs calls; the suffixes are journaled before and after, as a write
 * does. Folders that held files before (or got several) are cleaned up afterwards.
 */
async function publishBatch(
  mgr: DiskFileManager,
  native: DiskfileAddon,
  syncFd: number,
  partDir: string,
  groups: Map<string, Staged[]>,
): Promise<{ received: number; skipped: number }> {
  const tmps: string[] = [];
  const targets: string[] = [];
  const suffixes = new Set<string>();
  const toClean = new Set<string>();
  let skipped = 0;
  const partitionHere = existsSync(partDir);
  for (const group of groups.values()) {
    const { suffix, hash } = group[0] as Staged;
    const hashDir = join(partDir, suffix, hash);
    // In a partition this device lacks there is nothing to compare with; a folder another writer
    // makes meanwhile is one the job reports as not made, and is cleaned up below.
    const have = partitionHere ? listNames(hashDir) : [];
    let publishing = 0;
    for (const s of group) {
      const kept = chooseFiles([...have, s.file], mgr.nowS(), mgr.reclaimAgeS).keep.some((f) => f.name === s.file);
      if (have.includes(s.file) || !kept) {
        skipped++;
        await unlink(s.tmp).catch(() => undefined);
        continue;
      }
      tmps.push(s.tmp);
      targets.push(join(hashDir, s.file));
      have.push(s.file);
      publishing++;
    }
    if (publishing > 0) suffixes.add(suffix);
    if (publishing > 1 || (publishing > 0 && have.length > publishing)) toClean.add(hashDir);
  }
  if (tmps.length === 0) return { received: 0, skipped };
  // The journal lives in the partition folder, which a wiped device has yet to make (the job's
  // second syncfs makes it durable with the rest).
  let journal = await openJournal(partDir, [...suffixes]).catch(absentAsUndefined);
  if (journal === undefined) {
    await mkdir(partDir, { recursive: true });
    journal = await openJournal(partDir, [...suffixes]);
  }
  let made: Buffer;
  try {
    journal.append(false);
    try {
      made = await native.publishFiles(syncFd, tmps, targets);
    } finally {
      // Also after a failure part-way: the files before it are published.
      journal.append(true);
    }
  } finally {
    journal.close();
  }
  // A folder the job did not make was there already: someone else's file may be in it.
  made.forEach((m, i) => {
    if (m === 0) toClean.add(dirname(targets[i] as string));
  });
  for (const dir of toClean) await cleanupHashDir(dir, mgr.nowS(), mgr.reclaimAgeS);
  return { received: tmps.length, skipped };
}

/** Without the native module: each file synced and published as a write's end is. */
async function publishEach(mgr: DiskFileManager, partDir: string, groups: Map<string, Staged[]>): Promise<{ received: number; skipped: number }> {
  let received = 0;
  let skipped = 0;
  const queue = [...groups.values()];
  const publishGroup = async (group: Staged[]): Promise<void> => {
    for (const s of group) {
      const hashDir = join(partDir, s.suffix, s.hash);
      const have = listNames(hashDir);
      const kept = chooseFiles([...have, s.file], mgr.nowS(), mgr.reclaimAgeS).keep.some((f) => f.name === s.file);
      if (have.includes(s.file) || !kept) {
        skipped++;
        await unlink(s.tmp).catch(() => undefined);
        continue;
      }
      if (!s.synced) {
        const fd = openSync(s.tmp, 'r+');
        try {
          await fdatasyncFd(fd);
          // As a PUT's body (body-writer.ts): a large file leaves the page cache once durable.
          if (mgr.keepCacheSize !== undefined && s.size > mgr.keepCacheSize) dropPageCache(fd, 0, 0);
        } finally {
          closeSync(fd);
        }
      }
      await mgr.publish(s.tmp, partDir, hashDir, s.file);
      received++;
    }
  };
  // Hash folders are independent, so several are published at once (their fsyncs overlap).
  const worker = async (): Promise<void> => {
    for (let g = queue.shift(); g !== undefined; g = queue.shift()) await publishGroup(g);
  };
  // Settle every worker before the tmp files are swept (receiveTar).
  const results = await Promise.allSettled(Array.from({ length: Math.min(PUBLISH_CONCURRENCY, queue.length) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return { received, skipped };
}

export async function receiveTar(
  mgr: DiskFileManager,
  device: string,
  partition: number,
  policyIndex: number,
  tar: NodeJS.ReadableStream,
  opts: { maxEntryBytes?: number; partPower?: number },
): Promise<{ received: number; skipped: number }> {
  const devPath = await mgr.checkDevice(device);
  const partDir = partitionDir(devPath, policyIndex, partition);
  const staged: Staged[] = [];
  let received = 0;
  let skipped = 0;
  const native = nativeAddon();
  // Opened before any received file is written: the publish's syncfs goes through it, and reports
  // the writeback errors recorded since it was opened (a path opened at publish time could miss a
  // failure of the batches written before).
  const syncFd = native ? openSync(devPath, 'r') : undefined;
  try {
    const stageOpts: { maxEntryBytes: number; partPower?: number } = { maxEntryBytes: opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES };
    if (opts.partPower !== undefined) stageOpts.partPower = opts.partPower;
    await stageEntries(mgr, devPath, partition, policyIndex, tar, stageOpts, staged);
    // The whole stream is valid: publish each file as a write does, keeping the newest. The files
    // of one hash folder go in stream order.
    const groups = new Map<string, Staged[]>();
    for (const s of staged) {
      const key = `${s.suffix}/${s.hash}`;
      const g = groups.get(key);
      if (g) g.push(s);
      else groups.set(key, [s]);
    }
    const counts = native && syncFd !== undefined ? await publishBatch(mgr, native, syncFd, partDir, groups) : await publishEach(mgr, partDir, groups);
    received = counts.received;
    skipped = counts.skipped;
    staged.length = 0;
  } finally {
    if (syncFd !== undefined) closeSync(syncFd);
    await Promise.all(staged.map((s) => unlink(s.tmp).catch(() => undefined)));
  }
  return { received, skipped };
}

export async function removePushed(
  mgr: DiskFileManager,
  device: string,
  partition: number,
  policyIndex: number,
  pushed: Iterable<string>,
): Promise<{ removed: number; kept: number }> {
  const partDir = partitionDir(await mgr.checkDevice(device), policyIndex, partition);
  const paths = [...pushed].map((p) => checkedPath(p, 'pushed file'));
  const suffixes = new Set(paths.map((p) => p.suffix));
  let removed = 0;
  let kept = 0;
  let partitionExists = true;
  // Deleting changes the suffixes too: journal before and after, as a write does.
  for (const s of suffixes) {
    await invalidateSuffix(partDir, s).catch((err: unknown) => {
      if (!isCode(err, 'ENOENT')) throw err;
      partitionExists = false;
    });
  }
  if (!partitionExists) return { removed: 0, kept: 0 };
  for (const p of paths) {
    try {
      await unlink(join(partDir, p.suffix, p.hash, p.file));
      removed++;
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
    }
  }
  // Walk the whole partition: count what stays, remove empty folders.
  let remainingSuffixes = 0;
  for (const suffix of listNames(partDir).filter((n) => SUFFIX_RE.test(n))) {
    const suffixDir = join(partDir, suffix);
    let remainingHashes = 0;
    for (const hash of listNames(suffixDir)) {
      const names = listNames(join(suffixDir, hash));
      if (names.length === 0) {
        await rmdir(join(suffixDir, hash)).catch(() => undefined);
        continue;
      }
      kept += names.length;
      remainingHashes++;
    }
    if (remainingHashes === 0) {
      try {
        await rmdir(suffixDir);
        continue;
      } catch (err) {
        if (!isCode(err, 'ENOENT') && !isCode(err, 'ENOTEMPTY')) throw err;
      }
    }
    remainingSuffixes++;
  }
  for (const s of suffixes) {
    await invalidateSuffix(partDir, s).catch(() => undefined);
  }
  if (remainingSuffixes === 0) {
    await withLock(join(partDir, LOCK_FILE), async () => {
      // `hashes` is only written under this lock, so a temporary of its writes found now is a
      // crash's leftover (io.ts replaceSmallFile), which would keep the folder forever.
      const leftovers = readdirSync(partDir).filter((n) => n.startsWith(`.${HASHES_FILE}.`) && n.endsWith('.tmp'));
      for (const f of [HASHES_FILE, INVALID_FILE, CONSUMING_FILE, ...leftovers]) {
        await unlink(join(partDir, f)).catch(() => undefined);
      }
    }).catch((err: unknown) => {
      if (!isCode(err, 'ENOENT')) throw err;
    });
    // Fails (and keeps the partition) if a writer put something here meanwhile.
    await rmdir(partDir).catch(() => undefined);
  }
  return { removed, kept };
}
