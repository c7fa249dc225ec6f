/**
 * A PUT's body on its way into its tmp file: hashed as it arrives (MD5 for the ETag unless the
 * sender supplies it, CRC-32 for the trailer), written on the thread pool one batch at a time
 * while the next batch is received, and flushed to disk in the background as it grows; a body
 * larger than `keepCacheBytes` leaves the page cache as it becomes durable (page-cache.ts). The
 * counterpart of body-reader.ts.
 */
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { releaseBuffer } from '@swiftlet/common';
import { fdatasyncFd, writeAllFd } from './io.js';
import { dropPageCache } from './page-cache.js';

/** Body writes are batched up to this many bytes per write. */
export const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * A large body starts a background fdatasync every this many bytes, so that the flush at the end
 * has little left to write instead of the whole body (Swift flushes every `mb_per_sync`, 512 MiB,
 * and waits for it). Measured on one object server, 12 PUTs of 1 GiB each way, alternated: 4.51 s
 * on average without, 3.71 s with (bench/RESULTS.md). 8 MiB rather than 32 so that a 16 MiB
 * multipart part (aws cli and lib-storage use 8-16 MiB) is half flushed and dropped from the page
 * cache before its end: 1 GiB in 16 MiB parts, 8 at a time, went from 74-78 to 79-85 MiB/s (4 MiB:
 * 76-79); a single 1 GiB PUT is the same within the spread.
 */
export const FLUSH_EVERY_BYTES = 8 * 1024 * 1024;

export class BodyWriter {
  private readonly md5: Hash | undefined;
  private crc = 0;
  private bytes = 0;
  /** The chunks received since the last write. */
  private batch: Buffer[] = [];
  private batchBytes = 0;
  /** The previous batch's write; one at a time, so the file is written in order. */
  private writing: Promise<void> | undefined;
  private flushing: Promise<void> | undefined;
  /**
   * A background flush's failure, kept for finish(): Linux reports a writeback error once per
   * open file, so the final fdatasync would not see the one a background flush consumed.
   */
  private flushError: unknown;
  private unflushed = 0;
  /** Bytes from the start of the file already dropped from the page cache. */
  private dropped = 0;

  /**
   * @param fd the tmp file; undefined: the body is small and held in memory, for the caller to
   *   write whole (`takeWhole`, DiskFile.write).
   * @param keepCacheBytes a body larger than this is dropped from the page cache once flushed
   *   (Swift's `keep_cache_size`, though Swift drops every body it writes); undefined: never.
   */
  constructor(
    private readonly fd: number | undefined,
    private readonly keepCacheBytes?: number,
    /** False when the sender vouches for the MD5 (its trailer) and only the CRC-32 is checked here. */
    withMd5 = true,
    /**
     * True when the chunks are this writer's to free (an HTTP request's body, which Node's parser
     * copies into fresh Buffers): each is released once written (@swiftlet/common releaseBuffer).
     */
    private readonly releaseChunks = false,
  ) {
    this.md5 = withMd5 ? createHash('md5') : undefined;
  }

  get size(): number {
    return this.bytes;
  }

  get crc32(): number {
    return this.crc;
  }

  /** Hex MD5 of the body so far (call once, after the last chunk; not with `withMd5` false). */
  md5Hex(): string {
    if (!this.md5) throw new Error('BodyWriter: no MD5 was computed');
    return this.md5.digest('hex');
  }

  /** One received chunk. Resolves when the next may come (a full batch waits for the previous write). */
  async add(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    this.md5?.update(chunk);
    this.crc = crc32(chunk, this.crc);
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    if (this.batchBytes < WRITE_BATCH_BYTES || this.fd === undefined) return;
    const fd = this.fd;
    if (this.writing) await this.writing;
    // Every byte before this batch is written now: the next background flush makes it clean.
    const writtenBytes = this.bytes - this.batchBytes;
    const batch = this.batch;
    const write = writeAllFd(fd, batch).then(() => this.release(batch));
    // Until it is awaited, a failed write must not count as an unhandled rejection.
    write.catch(() => undefined);
    this.writing = write;
    this.unflushed += this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    if (this.unflushed >= FLUSH_EVERY_BYTES && this.flushing === undefined) {
      this.unflushed = 0;
      this.flushing = fdatasyncFd(fd)
        .then(() => this.dropFlushed(writtenBytes))
        .catch((err: unknown) => {
          this.flushError ??= err;
        })
        .finally(() => {
          this.flushing = undefined;
        });
    }
  }

  /** Writes what is left and the trailer, then makes the file's data durable (fdatasync). */
  async finish(trailer: Buffer): Promise<void> {
    if (this.fd === undefined) throw new Error('BodyWriter: a body held in memory has no file to finish');
    if (this.writing) await this.writing;
    const rest = this.batch;
    this.batch = [];
    await writeAllFd(this.fd, [...rest, trailer]);
    this.release(rest);
    if (this.flushing) await this.flushing;
    if (this.flushError !== undefined) throw this.flushError;
    await fdatasyncFd(this.fd);
    this.dropFlushed(0);
  }

  /**
   * A body held in memory (no fd), followed by `trailer`, as one Buffer; the chunks are released
   * (when they are this writer's to free).
   */
  takeWhole(trailer: Buffer): Buffer {
    if (this.fd !== undefined) throw new Error('BodyWriter: the body went to its file');
    const whole = Buffer.concat([...this.batch, trailer]);
    this.release(this.batch);
    this.batch = [];
    return whole;
  }

  /** After the chunks' write: nothing refers to them any more. */
  private release(chunks: Buffer[]): void {
    if (this.releaseChunks) for (const chunk of chunks) releaseBuffer(chunk);
  }

  /** Drops the flushed bytes not dropped yet (`upTo` 0: the whole file) if the body is large. */
  private dropFlushed(upTo: number): void {
    if (this.fd === undefined || this.keepCacheBytes === undefined || this.bytes <= this.keepCacheBytes) return;
    if (upTo !== 0 && upTo <= this.dropped) return;
    // Advice only: an errno here leaves the pages cached, which costs memory, never data.
    dropPageCache(this.fd, this.dropped, upTo === 0 ? 0 : upTo - this.dropped);
    this.dropped = upTo;
  }

  /** After a failure: waits for the write and flush in flight, so the caller may close the file. */
  async settle(): Promise<void> {
    await this.writing?.catch(() => undefined);
    await this.flushing;
  }
}
