/**
 * DiskFileManager: the devices of one node as Swift lays them out. Owns device checks
 * (mount_check), the free-space reserve, tmp files, publishing, quarantine, the suffix hash cache
 * and the replication helpers (sync.ts).
 */
import { randomBytes } from 'node:crypto';
import { statfsSync, statSync } from 'node:fs';
import { link, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  BadRequestError,
  fsyncDir,
  InsufficientStorageError,
  mkdirDurable,
  type Logger,
  type SwiftConf,
} from '@swiftlet/common';
import { DiskFile } from './disk-file.js';
import { getPartitionHashes, hashesDigest, invalidateSuffix, openJournal, settledDigest } from './hash-cache.js';
import { HASH_RE, INVALID_FILE, objectsDirName, partitionDir, SUFFIX_RE } from './layout.js';
import { openFd } from './io.js';
import { nativeAddon, type DiskfileAddon } from './native.js';
import { absentAsUndefined, cleanupHashDir, isCode } from './ondisk.js';
import * as sync from './sync.js';
import type { DiskFileManagerOptions, ReadChecksum, SuffixFiles } from './types.js';

const TMP_DIR = 'tmp';
const QUARANTINE_DIR = 'quarantined';
/** tmp names: `<pid>.<random>.<policy>.<partition>.<suffix>.tmp` (see hash-cache.ts, point 3). */
const TMP_RE = /^(\d+)\.[0-9a-f]+\.(\d+)\.(\d+)\.([0-9a-f]{3})\.tmp$/;
/**
 * `<pid>.<hex>` naming this process's tmp files: the hex is 12 random digits drawn once, then a
 * counter. A name per write from randomBytes and process.pid (a getpid call each time) was 2 % of
 * a small PUT's event-loop time.
 */
let tmpPrefix: string | undefined;
let tmpCounter = 0;
function nextTmpStem(): string {
  tmpPrefix ??= `${process.pid}.${randomBytes(6).toString('hex')}`;
  return `${tmpPrefix}${(tmpCounter++).toString(16)}`;
}
const DEVICE_RE = /^[A-Za-z0-9_.-]+$/;

/** checkReserve takes a device's statfs again after this long. */
const STATFS_MAX_AGE_MS = 250;

/** A group commit takes at most this many writes, and stops adding once past this many bytes. */
const MAX_COMMIT_WRITES = 128;
const MAX_COMMIT_BYTES = 4 * 1024 * 1024;
/** One job per device at a time: two (measured, 16 connections) only made the batches smaller. */
const MAX_COMMIT_JOBS = 1;

/** A small write waiting for its group commit (DiskFileManager.commitWhole). */
interface WholeWrite {
  tmp: string;
  target: string;
  journal: string;
  line: string;
  content: Buffer;
  resolve: (made: number) => void;
  reject: (err: unknown) => void;
}

interface CommitQueue {
  waiting: WholeWrite[];
  /** Jobs of this device running. */
  running: number;
}

export class DiskFileManager {
  readonly devices: string;
  readonly mountCheck: boolean;
  readonly reclaimAgeS: number;
  readonly fallocateReserve: { percent?: number; bytes?: number };
  readonly readChecksum: ReadChecksum;
  readonly keepCacheSize: number | undefined;
  readonly swiftConf: SwiftConf;
  readonly logger: Logger;
  private readonly clock: () => number;
  private readonly tmpDirsMade = new Set<string>();
  /** The last statfs of each device (checkReserve). */
  private readonly freeSpace = new Map<string, { at: number; free: number; total: number }>();
  /** Small writes waiting for their group commit, per device folder (commitWhole). */
  private readonly commitQueues = new Map<string, CommitQueue>();
  /** Passes per partition, for Swift's every-10th-pass re-listing. */
  private readonly passes = new Map<string, number>();

  constructor(opts: DiskFileManagerOptions) {
    this.devices = opts.devices;
    this.mountCheck = opts.mountCheck;
    this.reclaimAgeS = opts.reclaimAgeS ?? 604800;
    this.fallocateReserve = opts.fallocateReserve ?? { percent: 1 };
    this.readChecksum = opts.readChecksum ?? 'crc32';
    this.keepCacheSize = opts.keepCacheSize;
    this.swiftConf = opts.swiftConf;
    this.logger = opts.logger;
    this.clock = opts.now ?? (() => Date.now() / 1000);
  }

  nowS(): number {
    return this.clock();
  }

  devicePath(device: string): string {
    if (!DEVICE_RE.test(device) || device === '.' || device === '..') {
      throw new BadRequestError(`invalid device name "${device}"`);
    }
    return join(this.devices, device);
  }

  /** Path of a usable device; throws InsufficientStorageError (507) if missing/unmounted (mount_check). */
  async checkDevice(device: string): Promise<string> {
    const path = this.devicePath(device);
    try {
      // Direct stat calls (io.ts): this runs on every request.
      const st = statSync(path);
      if (!st.isDirectory()) throw new InsufficientStorageError(`${device} is not a folder`);
      if (this.mountCheck) {
        const parent = statSync(dirname(path));
        if (st.dev === parent.dev && st.ino !== parent.ino) throw new InsufficientStorageError(`${device} is not mounted`);
      }
    } catch (err) {
      if (err instanceof InsufficientStorageError) throw err;
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) throw new InsufficientStorageError(`${device} does not exist`);
      throw err;
    }
    return path;
  }

  diskFile(device: string, partition: number, policyIndex: number, account: string, container: string, object: string): DiskFile {
    const hash = this.swiftConf.hashPath(account, container, object).hex;
    return new DiskFile(this, device, partition, policyIndex, hash, `/${account}/${container}/${object}`);
  }

  diskFileByHash(device: string, partition: number, policyIndex: number, hash: string): DiskFile {
    if (!HASH_RE.test(hash)) throw new BadRequestError(`invalid object hash "${hash}"`);
    return new DiskFile(this, device, partition, policyIndex, hash, undefined);
  }

  partitionPath(device: string, policyIndex: number, partition: number): string {
    return partitionDir(this.devicePath(device), policyIndex, partition);
  }

  /** REPLICATE: {suffix: md5hex} of every non-empty suffix; {} for a missing partition (not created). */
  async getHashes(
    device: string,
    partition: number,
    policyIndex: number,
    opts: { recalculate?: string[]; listdir?: boolean } = {},
  ): Promise<Record<string, string>> {
    const devPath = await this.checkDevice(device);
    const partDir = partitionDir(devPath, policyIndex, partition);
    for (const s of opts.recalculate ?? []) {
      if (!SUFFIX_RE.test(s)) throw new BadRequestError(`invalid suffix "${s}"`);
    }
    const listdir = opts.listdir ?? this.listdirDue(devPath, policyIndex, partition);
    try {
      const st = statSync(partDir);
      if (!st.isDirectory()) return {};
      const res = await getPartitionHashes(partDir, {
        nowS: this.nowS(),
        reclaimAgeS: this.reclaimAgeS,
        listdir,
        recalculate: opts.recalculate ?? [],
      });
      return res.hashes;
    } catch (err) {
      // The partition went away (handoff removed) while we looked.
      if (isCode(err, 'ENOENT')) return {};
      throw err;
    }
  }

  /**
   * The digest of the partition's suffix hashes (hash-cache.ts, hashesDigest): read from the cache
   * of a settled partition, else from a getHashes pass. Equal digests = the same suffix hashes.
   */
  async getHashesDigest(device: string, partition: number, policyIndex: number): Promise<string> {
    const devPath = await this.checkDevice(device);
    return this.digestOf(devPath, device, partition, policyIndex);
  }

  /** getHashesDigest for many partitions of one device (its check made once). */
  async getHashesDigests(device: string, policyIndex: number, partitions: readonly number[]): Promise<Map<number, string>> {
    const devPath = await this.checkDevice(device);
    const out = new Map<number, string>();
    for (const p of partitions) out.set(p, await this.digestOf(devPath, device, p, policyIndex));
    return out;
  }

  private async digestOf(devPath: string, device: string, partition: number, policyIndex: number): Promise<string> {
    const partDir = partitionDir(devPath, policyIndex, partition);
    // Every 10th look at a partition re-lists it for suffix folders the cache does not know, as
    // getHashes does: that takes the full path.
    if (!this.listdirDue(devPath, policyIndex, partition)) {
      try {
        const settled = settledDigest(partDir);
        if (settled !== undefined) return settled;
      } catch (err) {
        if (!isCode(err, 'ENOTDIR')) throw err;
      }
      return hashesDigest(await this.getHashes(device, partition, policyIndex, { listdir: false }));
    }
    return hashesDigest(await this.getHashes(device, partition, policyIndex, { listdir: true }));
  }

  /** Swift re-lists a partition on every 10th get_hashes; spread over partitions by number. */
  private listdirDue(devPath: string, policyIndex: number, partition: number): boolean {
    const key = `${devPath}|${policyIndex}|${partition}`;
    const cycle = this.passes.get(key) ?? 0;
    this.passes.set(key, (cycle + 1) % 10);
    return (partition + cycle) % 10 === 0;
  }

  async listPartitions(device: string, policyIndex: number): Promise<number[]> {
    const devPath = await this.checkDevice(device);
    let names: string[];
    try {
      names = await readdir(join(devPath, objectsDirName(policyIndex)));
    } catch (err) {
      if (isCode(err, 'ENOENT')) return [];
      throw err;
    }
    return names
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  }

  /**
   * 507 if a write of `size` bytes would leave less free space than fallocate_reserve. The
   * device's statfs is reused for STATFS_MAX_AGE_MS, less the size of every write it let through
   * meanwhile (so it errs on the full side); a statfs per write was 1-2 % of a small PUT.
   */
  async checkReserve(devPath: string, size: number): Promise<void> {
    const { percent, bytes } = this.fallocateReserve;
    if (!percent && !bytes) return;
    const now = this.nowS() * 1000;
    let space = this.freeSpace.get(devPath);
    // (A clock stepped back refreshes it too.)
    if (space === undefined || now - space.at > STATFS_MAX_AGE_MS || now < space.at) {
      const fs = statfsSync(devPath);
      space = { at: now, free: fs.bavail * fs.bsize, total: fs.blocks * fs.bsize };
      this.freeSpace.set(devPath, space);
    }
    const free = space.free - size;
    const { total } = space;
    if ((bytes !== undefined && free < bytes) || (percent !== undefined && total > 0 && (free / total) * 100 < percent)) {
      throw new InsufficientStorageError(`not enough space on ${basename(devPath)} (fallocate_reserve)`);
    }
    space.free = free;
  }

  /** True when publish takes a small file's whole content (one thread-pool job for the write). */
  canWriteWhole(): boolean {
    return nativeAddon() !== null;
  }

  /** Creates a tmp file for a write into (policy, partition, suffix); the caller owns the fd. */
  async openTmp(devPath: string, policyIndex: number, partition: number, suffix: string): Promise<{ tmp: string; fd: number }> {
    const tmp = await this.tmpPath(devPath, policyIndex, partition, suffix);
    try {
      return { tmp, fd: await openFd(tmp, 'wx', 0o644) };
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
      await mkdirDurable(dirname(tmp));
      return { tmp, fd: await openFd(tmp, 'wx', 0o644) };
    }
  }

  /** The device's tmp folder is gone: tmpPath makes it again. */
  forgetTmpDir(devPath: string): void {
    this.tmpDirsMade.delete(join(devPath, TMP_DIR));
  }

  /** A fresh name in the device's tmp folder (made, durably, on first use). */
  async tmpPath(devPath: string, policyIndex: number, partition: number, suffix: string): Promise<string> {
    const dir = join(devPath, TMP_DIR);
    if (!this.tmpDirsMade.has(dir)) {
      await mkdirDurable(dir);
      this.tmpDirsMade.add(dir);
    }
    return join(dir, `${nextTmpStem()}.${policyIndex}.${partition}.${suffix}.tmp`);
  }

  /**
   * Publishes a synced tmp file as `<hashDir>/<name>`: journal, link, fsync the folder, journal
   * again, drop the tmp name, clean the folder up (hash-cache.ts explains the order). With the
   * native module all of it but the cleanup is one thread-pool job (its linkAndSync), and the
   * cleanup is skipped for a .data in a hash folder the job made (alone in it); with
   * `content` (see canWriteWhole) the same job first creates `tmp` with those bytes and syncs it.
   * Without the module: direct journal appends and one thread-pool job per call.
   */
  async publish(tmp: string, partDir: string, hashDir: string, name: string, content?: Buffer): Promise<void> {
    const suffix = basename(dirname(hashDir));
    const target = join(hashDir, name);
    const native = nativeAddon();
    if (native) {
      const journal = join(partDir, INVALID_FILE);
      const line = `${suffix}\n`;
      const made =
        content === undefined
          ? await native.linkAndSync(tmp, target, journal, line)
          : await this.commitWhole(native, partDir, { tmp, target, journal, line, content });
      // A .data alone in a fresh folder is what cleanup would keep (a tombstone may be past
      // reclaim_age, a .meta alone is an orphan: those are looked at).
      if (made === 0 || !name.endsWith('.data')) await cleanupHashDir(hashDir, this.nowS(), this.reclaimAgeS);
      return;
    }
    if (content !== undefined) throw new Error('publish: a whole file needs the native module');
    // The first write into a partition makes its folder for the journal.
    let topCreated: string | undefined;
    let journal = await openJournal(partDir, suffix).catch(absentAsUndefined);
    if (journal === undefined) {
      topCreated = await mkdir(hashDir, { recursive: true });
      journal = await openJournal(partDir, suffix);
    }
    try {
      journal.append(false);
      // On disk before the link can be (hash-cache.ts, the power-loss note).
      await journal.sync();
      for (let attempt = 0; ; attempt++) {
        // Each folder made here is fsync'd after the link, with it: its entry in its parent, up
        // to the parent of the topmost (the file's own data was synced before the link).
        const toSync = [hashDir];
        if (topCreated !== undefined) {
          for (let d = hashDir; d !== dirname(topCreated); d = dirname(d)) toSync.push(dirname(d));
        }
        try {
          await linkAndSyncByCalls(tmp, target, toSync);
          break;
        } catch (err) {
          // A cleanup removed the (still empty) fresh folders between our mkdir and link.
          if (isCode(err, 'ENOENT') && attempt < 5 && (err as { syscall?: string }).syscall === 'link') {
            const again = await mkdir(hashDir, { recursive: true });
            if (again !== undefined && (topCreated === undefined || again.length < topCreated.length)) topCreated = again;
            continue;
          }
          throw err;
        }
      }
      journal.append(true);
    } finally {
      journal.close();
    }
    await unlink(tmp).catch((err: unknown) => {
      if (!isCode(err, 'ENOENT')) throw err;
    });
    await cleanupHashDir(hashDir, this.nowS(), this.reclaimAgeS);
  }

  /**
   * Group commit of small writes (whole content in memory, native module): one job per device at
   * a time. A write that finds none running goes alone, as linkAndSync with its own fdatasync and
   * folder fsyncs; the writes that arrive while a job runs wait for it, then go together as one
   * commitFiles job (two syncfs calls for all of them). At low load nothing waits; under load the
   * writes share their flushes and their thread-pool round trip (bench/RESULTS.md, object server).
   */
  private commitWhole(native: DiskfileAddon, partDir: string, write: Omit<WholeWrite, 'resolve' | 'reject'>): Promise<number> {
    // The device's folder: partDir is <device>/objects[-N]/<partition>.
    const device = dirname(dirname(partDir));
    let queue = this.commitQueues.get(device);
    if (queue === undefined) {
      queue = { waiting: [], running: 0 };
      this.commitQueues.set(device, queue);
    }
    const q = queue;
    return new Promise<number>((resolve, reject) => {
      q.waiting.push({ ...write, resolve, reject });
      if (q.running < MAX_COMMIT_JOBS) void this.runCommits(native, device, q);
    });
  }

  private async runCommits(native: DiskfileAddon, device: string, queue: CommitQueue): Promise<void> {
    queue.running++;
    try {
      while (queue.waiting.length > 0) {
        let bytes = 0;
        let count = 0;
        while (count < queue.waiting.length && count < MAX_COMMIT_WRITES && (count === 0 || bytes < MAX_COMMIT_BYTES)) {
          bytes += (queue.waiting[count] as WholeWrite).content.length;
          count++;
        }
        const batch = queue.waiting.splice(0, count);
        const only = batch.length === 1 ? batch[0] : undefined;
        if (only) {
          try {
            only.resolve(await native.linkAndSync(only.tmp, only.target, only.journal, only.line, only.content));
          } catch (err) {
            only.reject(err);
          }
          continue;
        }
        try {
          const results = await native.commitFiles(
            device,
            batch.map((w) => w.tmp),
            batch.map((w) => w.target),
            batch.map((w) => w.journal),
            batch.map((w) => w.line),
            batch.map((w) => w.content),
          );
          batch.forEach((w, i) => {
            const result = results[i];
            if (typeof result === 'number') w.resolve(result);
            else w.reject(result ?? new Error('commitFiles: no result'));
          });
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      queue.running--;
    }
  }

  async quarantineHashDir(device: string, policyIndex: number, partDir: string, hashDir: string, reason: string): Promise<void> {
    const devPath = this.devicePath(device);
    const qdir = join(devPath, QUARANTINE_DIR, objectsDirName(policyIndex));
    await mkdirDurable(qdir);
    const hash = basename(hashDir);
    const suffix = basename(dirname(hashDir));
    await invalidateSuffix(partDir, suffix);
    let dest = join(qdir, hash);
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(hashDir, dest);
        break;
      } catch (err) {
        if ((isCode(err, 'ENOTEMPTY') || isCode(err, 'EEXIST')) && attempt < 5) {
          dest = join(qdir, `${hash}-${randomBytes(16).toString('hex')}`);
          continue;
        }
        if (isCode(err, 'ENOENT')) return; // someone else quarantined it
        throw err;
      }
    }
    await fsyncDir(qdir);
    await fsyncDir(dirname(hashDir)).catch(() => undefined);
    await invalidateSuffix(partDir, suffix);
    this.logger.warn({ device, hash, quarantinedTo: dest, reason }, 'object quarantined');
  }

  async quarantineCount(device: string): Promise<number> {
    const devPath = await this.checkDevice(device);
    const q = join(devPath, QUARANTINE_DIR);
    let count = 0;
    let dirs: string[];
    try {
      dirs = await readdir(q);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return 0;
      throw err;
    }
    for (const d of dirs) {
      if (!/^objects(-\d+)?$/.test(d)) continue;
      count += (await readdir(join(q, d)).catch(() => [] as string[])).length;
    }
    return count;
  }

  /**
   * Removes tmp files of `device` older than `olderThanS` seconds (a write that takes longer will
   * fail). The suffix named in each is journaled invalid first. Returns how many were removed.
   */
  async cleanupTmp(device: string, olderThanS: number): Promise<number> {
    const devPath = await this.checkDevice(device);
    const limit = this.nowS() - olderThanS;
    return sweepTmp(devPath, this.logger, async (_pid, path) => {
      const st = await stat(path);
      return st.mtimeMs / 1000 < limit;
    });
  }

  /** Start-up: removes every device's tmp files left by processes that are gone. */
  async removeStaleTmp(): Promise<number> {
    return removeStaleTmp(this.devices, this.logger);
  }

  // ---- replication helpers (sync.ts) ----

  /** For the sender: the surviving files of each hash in these suffixes (cleanup applied first). */
  listSuffixFiles(device: string, partition: number, policyIndex: number, suffixes: string[]): AsyncIterable<SuffixFiles> {
    return sync.listSuffixFiles(this, device, partition, policyIndex, suffixes);
  }

  /** For the receiver: which of the offered `<suffix>/<hash>/<file>` it lacks and would keep. */
  missingFiles(device: string, partition: number, policyIndex: number, offered: Iterable<string>): Promise<string[]> {
    return sync.missingFiles(this, device, partition, policyIndex, offered);
  }

  /** Receiver: applies a tar stream of `<suffix>/<hash>/<file>` entries (BadRequestError on anything hostile). */
  receiveTar(
    device: string,
    partition: number,
    policyIndex: number,
    tar: NodeJS.ReadableStream,
    opts: { maxEntryBytes?: number; partPower?: number } = {},
  ): Promise<{ received: number; skipped: number }> {
    return sync.receiveTar(this, device, partition, policyIndex, tar, opts);
  }

  /** Removes a whole (handoff) partition, but only the files listed as pushed; keeps anything newer. */
  removePushed(device: string, partition: number, policyIndex: number, pushed: Iterable<string>): Promise<{ removed: number; kept: number }> {
    return sync.removePushed(this, device, partition, policyIndex, pushed);
  }
}

async function sweepTmp(devPath: string, logger: Logger, shouldRemove: (pid: number, path: string) => Promise<boolean>): Promise<number> {
  const dir = join(devPath, TMP_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return 0;
    throw err;
  }
  let removed = 0;
  for (const name of names) {
    const path = join(dir, name);
    const m = TMP_RE.exec(name);
    try {
      if (!(await shouldRemove(m ? Number(m[1]) : -1, path))) continue;
      if (m) {
        // The write may have been published without its second journal entry.
        const partDir = partitionDir(devPath, Number(m[2]), Number(m[3]));
        await invalidateSuffix(partDir, m[4] as string).catch((err: unknown) => {
          if (!isCode(err, 'ENOENT')) throw err;
        });
      }
      await unlink(path);
      removed++;
    } catch (err) {
      if (!isCode(err, 'ENOENT')) logger.error({ err, path }, 'could not remove tmp file');
    }
  }
  return removed;
}


function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return !isCode(err, 'ESRCH');
  }
}

/**
 * Start-up cleanup of `<devices>/<device>/tmp/`: removes files whose writer process is gone (other
 * live workers' writes in progress are left alone). Call before serving.
 */
export async function removeStaleTmp(devices: string, logger: Logger): Promise<number> {
  let names: string[];
  try {
    names = await readdir(devices);
  } catch (err) {
    if (isCode(err, 'ENOENT')) return 0;
    throw err;
  }
  let removed = 0;
  for (const name of names) {
    removed += await sweepTmp(join(devices, name), logger, async (pid) => pid <= 0 || !pidAlive(pid));
  }
  if (removed > 0) logger.info({ removed }, 'removed leftover tmp files');
  return removed;
}

/**
 * The middle of what the native module's linkAndSync does, one thread-pool job per call: link
 * (rename over a file of the same name), fsync the folders (a folder gone is skipped: only a newer
 * write can have emptied it).
 */
async function linkAndSyncByCalls(tmp: string, target: string, dirs: string[]): Promise<void> {
  try {
    await link(tmp, target);
  } catch (err) {
    if (!isCode(err, 'EEXIST')) throw err;
    await rename(tmp, target);
  }
  await Promise.all(
    dirs.map((d) =>
      fsyncDir(d).catch((err: unknown) => {
        if (!isCode(err, 'ENOENT')) throw err;
      }),
    ),
  );
}
