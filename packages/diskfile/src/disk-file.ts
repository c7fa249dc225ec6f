/**
 * One object's hash folder: open (read the surviving files), read the body (verified), and the
 * three kinds of write. Every write goes: tmp file under `<device>/tmp/` -> fdatasync -> journal
 * the suffix invalid -> link into the hash folder -> fsync the folder -> journal again -> unlink the
 * tmp name -> cleanup (see hash-cache.ts for why in that order). Small writes are held in memory
 * and share their flushes with the device's other small writes (manager.ts, commitWhole).
 */
import { closeSync, fstatSync, openSync, readdirSync, statSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  BadRequestError,
  ClientDisconnectError,
  ConflictError,
  InsufficientStorageError,
  releaseBuffer,
  StoreError,
  Timestamp,
} from '@swiftlet/common';
import { BodyReader } from './body-reader.js';
import { CorruptFileError, UnprocessableEntityError } from './errors.js';
import { fileName, hashDir, partitionDir, suffixOf, type FileKind } from './layout.js';
import type { DiskFileManager } from './manager.js';
import { BodyWriter } from './body-writer.js';
import { closeQuietly, fdatasyncFd, writeAllFd } from './io.js';
import { BODY_CRC32_KEY, encodeTrailer, formatCrc32, parseCrc32, readMetadataFile, readMetadataFromFd } from './metadata-file.js';
import { chooseFiles, isCode, type OnDiskChoice } from './ondisk.js';
import { invalidateSuffix } from './hash-cache.js';
import type { ObjectState, ObjectStateObject } from './types.js';

/** Headers a POST (.meta) replaces, besides X-Object-Meta-* (Swift's default allowed_headers). */
const POST_REPLACED = new Set(
  [
    'Content-Disposition',
    'Content-Encoding',
    'X-Delete-At',
    'X-Object-Manifest',
    'Cache-Control',
    'Content-Language',
    'Expires',
    'X-Robots-Tag',
  ].map((h) => h.toLowerCase()),
);
/** Keys of the `.data` that a `.meta` never overrides. */
const DATA_ONLY = new Set(['content-length', 'etag', 'x-static-large-object', 'name', BODY_CRC32_KEY.toLowerCase()]);

interface OpenInfo {
  path: string;
  bodyLength: number;
  head?: Buffer;
  /** The body's CRC-32, when the `.data` records one (see BODY_CRC32_KEY). */
  crc32?: number;
}

const openInfo = new WeakMap<object, OpenInfo>();

/**
 * A PUT body of known length up to this size is held in memory and written whole, as the
 * replication receiver holds its small files (sync.ts): one thread-pool job per write.
 */
export const WHOLE_WRITE_BYTES = 64 * 1024;

function stripEtag(etag: string): string {
  return etag.trim().replace(/^"(.*)"$/, '$1').toLowerCase();
}

/** Merges a newer `.meta` into the `.data` metadata as Swift's POST semantics say. */
export function mergeMetadata(data: Record<string, string>, meta: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) {
    const lk = k.toLowerCase();
    if (lk.startsWith('x-object-meta-') || POST_REPLACED.has(lk)) continue;
    out[k] = v;
  }
  for (const [k, v] of Object.entries(meta)) {
    const lk = k.toLowerCase();
    if (DATA_ONLY.has(lk) || lk.startsWith('x-object-sysmeta-')) continue;
    if (lk === 'content-type' || lk === 'x-timestamp') {
      for (const existing of Object.keys(out)) if (existing.toLowerCase() === lk) delete out[existing];
    }
    out[k] = v;
  }
  return out;
}

export class DiskFile {
  readonly suffix: string;
  readonly partitionDir: string;
  readonly hashDir: string;

  /** @internal use DiskFileManager.diskFile / diskFileByHash. */
  constructor(
    private readonly mgr: DiskFileManager,
    readonly device: string,
    readonly partition: number,
    readonly policyIndex: number,
    readonly hash: string,
    /** `/a/c/o` when known (stored as `name`). */
    readonly name: string | undefined,
  ) {
    this.suffix = suffixOf(hash);
    this.partitionDir = partitionDir(mgr.devicePath(device), policyIndex, partition);
    this.hashDir = hashDir(this.partitionDir, hash);
  }

  /**
   * @param probe look the folder up first: for writes, which mostly create new objects, whose
   *   missing folder would otherwise cost a thrown ENOENT (~19 µs against ~7 for a stat here).
   */
  private async listChoice(probe = false): Promise<OnDiskChoice | undefined> {
    if (probe && statSync(this.hashDir, { throwIfNoEntry: false }) === undefined) return undefined;
    let names: string[];
    try {
      names = readdirSync(this.hashDir);
    } catch (err) {
      if (isCode(err, 'ENOENT')) return undefined;
      if (isCode(err, 'ENOTDIR')) {
        await this.quarantine('hash folder is not a folder');
        return undefined;
      }
      throw err;
    }
    return chooseFiles(names, this.mgr.nowS(), this.mgr.reclaimAgeS);
  }

  /** Reads the surviving files; a `.data` whose size disagrees with its metadata is quarantined (-> absent). */
  async open(): Promise<ObjectState> {
    for (let attempt = 0; ; attempt++) {
      try {
        const state = await this.openOnce();
        // Only a miss checks the device (so a missing or unmounted one answers 507, not 404): an
        // object found is on a device that holds it. Swift checks on every request; here a read
        // of a small object saves one or two stat calls of its ~7.
        if (state.kind === 'absent') await this.mgr.checkDevice(this.device);
        return state;
      } catch (err) {
        // A newer write cleaned the file we chose away between listing and opening: look again.
        if (isCode(err, 'ENOENT') && attempt < 3) continue;
        throw err;
      }
    }
  }

  private async openOnce(): Promise<ObjectState> {
    const choice = await this.listChoice();
    if (choice === undefined) return { kind: 'absent' };
    if (choice.ts) return { kind: 'tombstone', timestamp: choice.ts.timestamp };
    if (!choice.data) return { kind: 'absent' };
    const path = join(this.hashDir, choice.data.name);
    // Direct calls (io.ts): a small object is read whole here, and served from that buffer.
    const fd = openSync(path, 'r');
    let parsed;
    try {
      parsed = readMetadataFromFd(fd, fstatSync(fd).size, path);
    } catch (err) {
      closeQuietly(fd);
      if (!(err instanceof CorruptFileError)) throw err;
      await this.quarantine(err.message);
      return { kind: 'absent' };
    }
    closeSync(fd);
    const md = parsed.metadata;
    const declared = md['Content-Length'];
    if (declared === undefined || !/^\d+$/.test(declared) || Number(declared) !== parsed.bodyLength) {
      await this.quarantine(`body is ${parsed.bodyLength} bytes but Content-Length says ${declared ?? '(none)'}`);
      return { kind: 'absent' };
    }
    const etag = md['ETag'];
    if (etag === undefined || !/^[0-9a-f]{32}$/.test(etag)) {
      await this.quarantine(`bad ETag ${etag ?? '(none)'}`);
      return { kind: 'absent' };
    }
    const recordedCrc = md[BODY_CRC32_KEY];
    const crc = recordedCrc === undefined ? undefined : parseCrc32(recordedCrc);
    if (crc === null) {
      await this.quarantine(`bad ${BODY_CRC32_KEY} ${recordedCrc ?? ''}`);
      return { kind: 'absent' };
    }
    let metadata = md;
    let metaTimestamp: Timestamp | undefined;
    if (choice.meta) {
      let meta;
      try {
        meta = readMetadataFile(join(this.hashDir, choice.meta.name));
      } catch (err) {
        if (!(err instanceof CorruptFileError)) throw err;
        await this.quarantine(err.message);
        return { kind: 'absent' };
      }
      metadata = mergeMetadata(md, meta.metadata);
      metaTimestamp = choice.meta.timestamp;
    }
    const state: ObjectStateObject = {
      kind: 'object',
      timestamp: choice.data.timestamp,
      metadata,
      contentLength: parsed.bodyLength,
      etag,
    };
    if (metaTimestamp) state.metaTimestamp = metaTimestamp;
    const info: OpenInfo = { path, bodyLength: parsed.bodyLength };
    if (parsed.head) info.head = parsed.head;
    if (crc !== undefined) info.crc32 = crc;
    openInfo.set(state, info);
    return state;
  }

  /**
   * Streams [start, end] (inclusive) of the body of the object opened. A full read verifies MD5 and
   * length; on mismatch the object is quarantined and the stream destroyed with an error.
   */
  reader(state: ObjectStateObject, range?: { start: number; end: number }): Readable {
    const info = openInfo.get(state) ?? {
      path: join(this.hashDir, fileName(state.timestamp, 'data')),
      bodyLength: state.contentLength,
    };
    const start = range?.start ?? 0;
    const end = range?.end ?? info.bodyLength - 1;
    if (start < 0 || end >= info.bodyLength || (start > end && !(info.bodyLength === 0 && start === 0))) {
      throw new RangeError(`range ${start}-${end} outside a body of ${info.bodyLength} bytes`);
    }
    const full = start === 0 && end === info.bodyLength - 1;
    return new BodyReader({
      path: info.path,
      start,
      end,
      ...(full ? { verify: info.crc32 === undefined || this.mgr.readChecksum === 'md5' ? { etag: state.etag } : { etag: state.etag, crc32: info.crc32 } } : {}),
      ...(info.head ? { head: info.head } : {}),
      onCorrupt: (reason) => this.quarantine(reason),
    });
  }

  /**
   * Frees the file read whole at open (small objects), once the last reader of `state` is done and
   * its bytes have left the process (a GET's response finished): without it the buffer waits for a
   * garbage collection (@swiftlet/common releaseBuffer says why that matters).
   */
  releaseHead(state: ObjectStateObject): void {
    const head = openInfo.get(state)?.head;
    if (head === undefined) return;
    openInfo.delete(state);
    releaseBuffer(head);
  }

  /** Moves the hash folder to `<device>/quarantined/objects[-N]/<hash>[-<random>]`. */
  async quarantine(reason: string): Promise<void> {
    await this.mgr.quarantineHashDir(this.device, this.policyIndex, this.partitionDir, this.hashDir, reason);
  }

  /** The winning state's timestamp (for 409 checks). */
  private async conflictCheck(timestamp: Timestamp, kind: FileKind): Promise<void> {
    const choice = await this.listChoice(true);
    if (!choice) return;
    let current: Timestamp | undefined;
    if (kind === 'meta') current = choice.meta?.timestamp ?? choice.data?.timestamp ?? choice.ts?.timestamp;
    else current = choice.data?.timestamp ?? choice.ts?.timestamp;
    if (current !== undefined && current.compare(timestamp) >= 0) {
      throw new ConflictError(`${timestamp.internal} is not newer than ${current.internal}`, {
        headers: { 'X-Backend-Timestamp': current.internal },
      });
    }
  }

  private baseMetadata(timestamp: Timestamp, metadata: Record<string, string>): Record<string, string> {
    const md: Record<string, string> = { ...metadata };
    if (this.name !== undefined && md['name'] === undefined) md['name'] = this.name;
    md['X-Timestamp'] = timestamp.internal;
    return md;
  }

  /**
   * tmp file + MD5 -> fdatasync -> invalidate suffix -> link -> fsync dir -> cleanup.
   * Throws ConflictError(409) if not newer than what is stored, UnprocessableEntityError(422) on
   * etag mismatch, ClientDisconnectError(499) if the body ends short (or fails), BadRequestError if
   * it runs past contentLength, InsufficientStorageError(507) under fallocate_reserve or on ENOSPC.
   * Nothing is left behind on failure.
   */
  async write(
    timestamp: Timestamp,
    metadata: Record<string, string>,
    body: NodeJS.ReadableStream,
    opts: {
      contentLength?: number;
      expectedEtag?: string;
      /**
       * The body's MD5 and CRC-32 as the sender computed them, read once the body has ended (an
       * HTTP trailer): the CRC-32 is checked against the bytes received (422 if they differ) and
       * the MD5 becomes the ETag, so the body is not hashed with MD5 here.
       */
      senderChecksums?: () => { md5: string; crc32: number };
      /** The body's chunks are given away: each is freed once written (BodyWriter). */
      releaseChunks?: boolean;
    } = {},
  ): Promise<{ etag: string; size: number }> {
    const devPath = await this.mgr.checkDevice(this.device);
    await this.conflictCheck(timestamp, 'data');
    await this.mgr.checkReserve(devPath, opts.contentLength ?? 0);
    // A small body of known length is held in memory and written whole (writeWhole: one thread-pool
    // job with the native module instead of an open, an fdatasync and a publish).
    const whole = opts.contentLength !== undefined && opts.contentLength <= WHOLE_WRITE_BYTES && this.mgr.canWriteWhole();
    const file = whole ? undefined : await this.mgr.openTmp(devPath, this.policyIndex, this.partition, this.suffix);
    let etag: string;
    let size: number;
    let trailer: Buffer;
    const writer = new BodyWriter(file?.fd, this.mgr.keepCacheSize, opts.senderChecksums === undefined, opts.releaseChunks === true);
    try {
      try {
        for await (const raw of body) {
          const chunk = typeof raw === 'string' ? Buffer.from(raw) : (raw as Buffer);
          if (opts.contentLength !== undefined && writer.size + chunk.length > opts.contentLength) {
            throw new BadRequestError(`body longer than Content-Length ${opts.contentLength}`);
          }
          await writer.add(chunk);
        }
      } catch (err) {
        if (err instanceof StoreError || isCode(err, 'ENOSPC') || isCode(err, 'EIO')) throw err;
        throw new ClientDisconnectError(`body stream failed: ${(err as Error).message}`);
      }
      size = writer.size;
      if (opts.contentLength !== undefined && size !== opts.contentLength) {
        throw new ClientDisconnectError(`body ended after ${size} of ${opts.contentLength} bytes`);
      }
      if (opts.senderChecksums) {
        const sent = opts.senderChecksums();
        if (sent.crc32 !== writer.crc32) {
          throw new UnprocessableEntityError(`body CRC-32 ${formatCrc32(writer.crc32)} does not match the sender's ${formatCrc32(sent.crc32)}`);
        }
        etag = sent.md5;
      } else etag = writer.md5Hex();
      if (opts.expectedEtag !== undefined && stripEtag(opts.expectedEtag) !== etag) {
        throw new UnprocessableEntityError(`body MD5 ${etag} does not match ETag ${opts.expectedEtag}`);
      }
      const md = this.baseMetadata(timestamp, metadata);
      md['Content-Length'] = String(size);
      md['ETag'] = etag;
      md[BODY_CRC32_KEY] = formatCrc32(writer.crc32);
      trailer = encodeTrailer(md);
      if (file) {
        await writer.finish(trailer);
        closeSync(file.fd);
      }
    } catch (err) {
      // A write or flush may still be on the thread pool: the fd is closed after it.
      await writer.settle();
      if (file) {
        closeQuietly(file.fd);
        await removeQuietly(file.tmp);
      }
      throw this.asStorageError(err);
    }
    if (file) {
      try {
        await this.publishTmp(file.tmp, fileName(timestamp, 'data'));
      } catch (err) {
        throw this.asStorageError(err);
      }
    } else await this.writeWhole(devPath, fileName(timestamp, 'data'), writer.takeWhole(trailer));
    return { etag, size };
  }

  /** `.meta` (POST): metadata only. 409 if not newer than the newest `.meta`/`.data`/`.ts`. */
  async writeMeta(timestamp: Timestamp, metadata: Record<string, string>): Promise<void> {
    await this.writeSmall(timestamp, 'meta', metadata, true);
  }

  /** `.ts` (DELETE): accepted even under fallocate_reserve. 409 if not newer than the `.data`/`.ts`. */
  async writeTombstone(timestamp: Timestamp, metadata: Record<string, string> = {}): Promise<void> {
    await this.writeSmall(timestamp, 'ts', metadata, false);
  }

  private async writeSmall(timestamp: Timestamp, kind: 'meta' | 'ts', metadata: Record<string, string>, reserve: boolean): Promise<void> {
    const devPath = await this.mgr.checkDevice(this.device);
    await this.conflictCheck(timestamp, kind);
    if (reserve) await this.mgr.checkReserve(devPath, 0);
    await this.writeWhole(devPath, fileName(timestamp, kind), encodeTrailer(this.baseMetadata(timestamp, metadata)));
  }

  /**
   * A small file's whole content -> tmp file -> fdatasync -> publish: one thread-pool job with the
   * native module (its linkAndSync given the content), else the same steps one call at a time.
   * `content` is released afterwards.
   */
  private async writeWhole(devPath: string, name: string, content: Buffer): Promise<void> {
    try {
      if (this.mgr.canWriteWhole()) {
        for (let attempt = 0; ; attempt++) {
          const tmp = await this.mgr.tmpPath(devPath, this.policyIndex, this.partition, this.suffix);
          try {
            await this.publishTmp(tmp, name, content);
            return;
          } catch (err) {
            // The device's tmp folder went away (a wiped or replaced disk): made again, once.
            const e = err as NodeJS.ErrnoException;
            if (attempt > 0 || e.code !== 'ENOENT' || e.syscall !== 'open' || e.path !== tmp) throw err;
            this.mgr.forgetTmpDir(devPath);
          }
        }
      }
      const { tmp, fd } = await this.mgr.openTmp(devPath, this.policyIndex, this.partition, this.suffix);
      try {
        await writeAllFd(fd, [content]);
        await fdatasyncFd(fd);
        closeSync(fd);
      } catch (err) {
        closeQuietly(fd);
        await removeQuietly(tmp);
        throw err;
      }
      await this.publishTmp(tmp, name);
    } catch (err) {
      throw this.asStorageError(err);
    } finally {
      releaseBuffer(content);
    }
  }

  /** A full device (ENOSPC) is the client's 507; anything else as it is. */
  private asStorageError(err: unknown): unknown {
    return isCode(err, 'ENOSPC') ? new InsufficientStorageError(`${this.device} is full`) : err;
  }

  private async publishTmp(tmp: string, name: string, content?: Buffer): Promise<void> {
    try {
      await this.mgr.publish(tmp, this.partitionDir, this.hashDir, name, content);
    } catch (err) {
      // The file may be visible already (a failure after its link, say of the second journal
      // append): its suffix is journaled once more before the tmp name, which would make the
      // start-up sweep journal it, goes. If even that fails, the tmp file stays for the sweep.
      try {
        await invalidateSuffix(this.partitionDir, this.suffix);
      } catch (journalErr) {
        if (!isCode(journalErr, 'ENOENT')) {
          this.mgr.logger.error({ err: journalErr, tmp }, 'could not journal the suffix of a failed write; its tmp file is left for the sweep');
          throw err;
        }
      }
      await removeQuietly(tmp);
      throw err;
    }
  }
}

/**
 * Removes a tmp file on an error path (already gone is fine; the write's error is reported). On
 * the thread pool: an aborted upload's tmp file may be GiBs, which ext4 takes ~0.4 s/GiB to free.
 */
async function removeQuietly(tmp: string): Promise<void> {
  await unlink(tmp).catch(() => {
    // Nothing to add to the error being reported; start-up and replicator sweeps catch leftovers.
  });
}
