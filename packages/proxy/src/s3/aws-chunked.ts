/**
 * Decoder of `Content-Encoding: aws-chunked` bodies (the streaming SigV4 payload forms):
 *
 *   <hex-size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
 *   [<trailer-name>:<value>\r\n ...][x-amz-trailer-signature:<sig>\r\n]\r\n
 *
 * In signed modes each chunk is held until its signature (chained from the request's seed
 * signature) is verified, so that no unverified byte ever leaves the decoder. Unsigned chunks
 * stream straight through. Trailers are collected for the payload verifier.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from './s3-error.js';
import { ChunkSignatureChain, signaturesEqual } from './sigv4.js';

export interface AwsChunkedOptions {
  /** Chunk signatures are required and verified against this chain. */
  chain?: ChunkSignatureChain;
  /** A signed trailer (`x-amz-trailer-signature`) is required. */
  signedTrailer?: boolean;
  /** Largest chunk held in memory for verification (signed modes). */
  maxChunkBytes?: number;
}

const MAX_LINE = 4096;
const CRLF = Buffer.from('\r\n');

function incomplete(msg = 'The request body terminated unexpectedly'): S3Error {
  return new S3Error('IncompleteBody', msg);
}

function badSignature(): S3Error {
  return new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
}

export class AwsChunkedDecoder extends Transform {
  /** Trailing headers, lower-case names (e.g. `x-amz-checksum-crc32`). */
  readonly trailers: Record<string, string> = {};
  decodedBytes = 0;
  private buf: Buffer = Buffer.alloc(0);
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' | 'done' = 'size';
  private remaining = 0;
  private chunkSignature: string | undefined;
  private chunkHash: Hash | undefined;
  private held: Buffer[] = [];
  private trailerLines: string[] = [];
  private readonly maxChunkBytes: number;

  constructor(private readonly opts: AwsChunkedOptions = {}) {
    super();
    this.maxChunkBytes = opts.maxChunkBytes ?? 16 * 1024 * 1024;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.parse();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.parse();
      if (this.state === 'trailer' && this.buf.length === 0) {
        // Some clients omit the CRLF that closes the trailer section.
        this.finishTrailers();
      }
      if (this.state !== 'done') throw incomplete();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private readLine(): string | undefined {
    const i = this.buf.indexOf(CRLF);
    if (i < 0) {
      if (this.buf.length > MAX_LINE) throw incomplete('aws-chunked line too long');
      return undefined;
    }
    const line = this.buf.subarray(0, i).toString('latin1');
    this.buf = this.buf.subarray(i + 2);
    return line;
  }

  private parse(): void {
    for (;;) {
      switch (this.state) {
        case 'size': {
          const line = this.readLine();
          if (line === undefined) return;
          this.startChunk(line);
          break;
        }
        case 'data': {
          if (this.buf.length === 0) return;
          const take = Math.min(this.remaining, this.buf.length);
          const piece = this.buf.subarray(0, take);
          this.buf = this.buf.subarray(take);
          this.remaining -= take;
          this.decodedBytes += take;
          if (this.chunkHash) {
            this.chunkHash.update(piece);
            this.held.push(piece);
          } else {
            this.push(piece);
          }
          if (this.remaining === 0) this.state = 'data-crlf';
          break;
        }
        case 'data-crlf': {
          if (this.buf.length < 2) return;
          if (this.buf[0] !== 0x0d || this.buf[1] !== 0x0a) throw incomplete('aws-chunked chunk data is not followed by CRLF');
          this.buf = this.buf.subarray(2);
          this.endChunk();
          this.state = 'size';
          break;
        }
        case 'trailer': {
          const line = this.readLine();
          if (line === undefined) return;
          if (line === '') {
            this.finishTrailers();
            break;
          }
          this.trailerLines.push(line);
          break;
        }
        case 'done':
          // Anything after the closing CRLF is ignored, as S3 does.
          this.buf = Buffer.alloc(0);
          return;
      }
    }
  }

  private startChunk(line: string): void {
    const [sizeText, ...ext] = line.split(';');
    if (!sizeText || !/^[0-9a-fA-F]{1,16}$/.test(sizeText.trim())) throw incomplete(`malformed aws-chunked chunk header "${line.slice(0, 80)}"`);
    const size = parseInt(sizeText.trim(), 16);
    let signature: string | undefined;
    for (const e of ext) {
      const [k, v] = e.split('=');
      if (k?.trim() === 'chunk-signature') signature = v?.trim();
    }
    if (this.opts.chain) {
      if (!signature) throw badSignature();
      if (size > this.maxChunkBytes) throw new S3Error('InvalidChunkSizeError', `Chunks larger than ${this.maxChunkBytes} bytes are not accepted`);
      this.chunkSignature = signature;
      this.chunkHash = createHash('sha256');
    }
    if (size === 0) {
      this.endChunk();
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.state = 'data';
  }

  private endChunk(): void {
    if (!this.opts.chain || !this.chunkHash) return;
    const expected = this.opts.chain.next(this.chunkHash.digest('hex'));
    if (!signaturesEqual(expected, this.chunkSignature ?? '')) throw badSignature();
    for (const piece of this.held) this.push(piece);
    this.held = [];
    this.chunkHash = undefined;
    this.chunkSignature = undefined;
  }

  private finishTrailers(): void {
    let trailerSignature: string | undefined;
    const canonical: string[] = [];
    for (const line of this.trailerLines) {
      const i = line.indexOf(':');
      if (i <= 0) throw incomplete(`malformed trailer "${line.slice(0, 80)}"`);
      const name = line.slice(0, i).trim().toLowerCase();
      const value = line.slice(i + 1).trim();
      if (name === 'x-amz-trailer-signature') {
        trailerSignature = value;
        continue;
      }
      this.trailers[name] = value;
      canonical.push(`${name}:${value}\n`);
    }
    if (this.opts.signedTrailer && this.opts.chain) {
      if (!trailerSignature) throw badSignature();
      const expected = this.opts.chain.trailer(canonical.join(''));
      if (!signaturesEqual(expected, trailerSignature)) throw badSignature();
    }
    this.state = 'done';
  }
}
