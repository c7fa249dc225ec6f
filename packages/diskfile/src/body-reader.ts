/**
 * Streams [start, end] of a `.data` body with backpressure and big reads. A full read (0 to the
 * last byte) checks length and MD5 as the bytes stream; on mismatch the last chunk is withheld,
 * `onCorrupt` runs (quarantine) and the stream is destroyed with an error, so the server cuts the
 * connection instead of ending the response normally.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { CorruptFileError } from './errors.js';

export const READ_CHUNK_BYTES = 512 * 1024;

export interface BodyReaderOptions {
  path: string;
  start: number;
  /** Inclusive. */
  end: number;
  /** Present for full reads: what the body must hash to. */
  verify?: { etag: string };
  /** The whole file, when open() already read it (small objects). */
  head?: Buffer;
  onCorrupt: (reason: string) => Promise<void>;
}

export class BodyReader extends Readable {
  private fh: FileHandle | undefined;
  private pos: number;
  private readonly md5: Hash | undefined;
  private reading = false;

  constructor(private readonly opts: BodyReaderOptions) {
    // Room for one chunk read ahead while the previous one is sent.
    super({ highWaterMark: 2 * READ_CHUNK_BYTES });
    this.pos = opts.start;
    this.md5 = opts.verify ? createHash('md5') : undefined;
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    this.readChunk().then(
      () => {
        this.reading = false;
      },
      (err: unknown) => {
        this.reading = false;
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private async readChunk(): Promise<void> {
    const { end, head } = this.opts;
    if (this.pos > end) {
      // Only an empty body gets here unread; it must still hash to its ETag.
      if (this.md5 && this.opts.verify) await this.verify();
      this.push(null);
      return;
    }
    let chunk: Buffer;
    if (head !== undefined) {
      chunk = head.subarray(this.pos, end + 1);
    } else {
      this.fh ??= await open(this.opts.path, 'r');
      const n = Math.min(READ_CHUNK_BYTES, end + 1 - this.pos);
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await this.fh.read(buf, 0, n, this.pos);
      chunk = buf.subarray(0, bytesRead);
    }
    if (chunk.length === 0) {
      const reason = `body shorter than its Content-Length (ended at byte ${this.pos})`;
      if (this.md5) await this.opts.onCorrupt(reason);
      throw new CorruptFileError(`${this.opts.path}: ${reason}`);
    }
    this.pos += chunk.length;
    this.md5?.update(chunk);
    if (this.pos > end) {
      if (this.md5 && this.opts.verify) await this.verify();
      this.push(chunk);
      this.push(null);
      return;
    }
    this.push(chunk);
  }

  private async verify(): Promise<void> {
    const etag = this.opts.verify?.etag;
    const got = this.md5?.digest('hex');
    if (got !== etag) {
      const reason = `body MD5 ${got} differs from ETag ${etag}`;
      await this.opts.onCorrupt(reason);
      throw new CorruptFileError(`${this.opts.path}: ${reason}`);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (!fh) {
      cb(err);
      return;
    }
    fh.close().then(
      () => cb(err),
      () => cb(err),
    );
  }
}
