/**
 * The last stage of every upload body: counts the bytes and hashes them (SHA-256 of a signed
 * payload, Content-MD5, the `x-amz-checksum-*` value), and holds back the newest piece of data
 * until the body has ended and every check passed. A failed check errors the stream *before* its
 * last byte is forwarded, so the backend PUT is short of its Content-Length and nothing is stored.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from './s3-error.js';
import { checksumMismatch, createChecksum, isValidChecksumValue, type ChecksumAlgorithm, type ChecksumHasher } from './checksums.js';

export interface PayloadChecks {
  /** The body must have exactly this many bytes. */
  expectedLength?: number;
  /** Lower-case hex SHA-256 the client signed. */
  sha256Hex?: string;
  /** Content-MD5 (base64) sent by the client. */
  md5Base64?: string;
  /**
   * Additional checksum: its algorithm, and the expected value from a header, or from a trailer
   * (`fromTrailer`); with neither, the checksum is only computed (to be stored).
   */
  checksum?: { algorithm: ChecksumAlgorithm; expected?: string; fromTrailer?: boolean };
  /** Trailing headers of an aws-chunked body, read once the body has ended. */
  trailers?: () => Record<string, string>;
}

export interface PayloadResult {
  size: number;
  md5Hex?: string;
  /** The verified checksum (base64), if one was requested. */
  checksum?: { algorithm: ChecksumAlgorithm; value: string };
}

export class PayloadVerifier extends Transform {
  /** The first check that failed, kept so that the handler answers it whatever the backend said. */
  failure: S3Error | undefined;
  result: PayloadResult | undefined;
  private size = 0;
  private held: Buffer | undefined;
  private readonly sha256: Hash | undefined;
  private readonly md5: Hash | undefined;
  private readonly checksum: ChecksumHasher | undefined;

  constructor(private readonly checks: PayloadChecks) {
    super();
    this.sha256 = checks.sha256Hex ? createHash('sha256') : undefined;
    this.md5 = checks.md5Base64 !== undefined ? createHash('md5') : undefined;
    this.checksum = checks.checksum ? createChecksum(checks.checksum.algorithm) : undefined;
  }

  private fail(err: S3Error): S3Error {
    this.failure ??= err;
    return this.failure;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (chunk.length === 0) return cb();
    this.size += chunk.length;
    if (this.checks.expectedLength !== undefined && this.size > this.checks.expectedLength) {
      return cb(this.fail(new S3Error('InvalidRequest', 'The request body is longer than its declared length')));
    }
    this.sha256?.update(chunk);
    this.md5?.update(chunk);
    this.checksum?.update(chunk);
    const previous = this.held;
    this.held = chunk;
    if (previous) this.push(previous);
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.verify().then(
      (result) => {
        this.result = result;
        if (this.held) this.push(this.held);
        this.held = undefined;
        cb();
      },
      (err: unknown) => cb(err instanceof S3Error ? this.fail(err) : (err as Error)),
    );
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    // An upstream failure (client gone, bad chunk signature) is what the client should hear.
    if (err instanceof S3Error) this.failure ??= err;
    this.held = undefined;
    cb(err);
  }

  private async verify(): Promise<PayloadResult> {
    const { expectedLength, sha256Hex, md5Base64, checksum } = this.checks;
    if (expectedLength !== undefined && this.size !== expectedLength) {
      throw new S3Error('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header');
    }
    if (this.sha256 && sha256Hex) {
      const got = this.sha256.digest('hex');
      if (got !== sha256Hex) {
        throw new S3Error('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", {
          extra: { ClientComputedContentSHA256: sha256Hex, S3ComputedContentSHA256: got },
        });
      }
    }
    const result: PayloadResult = { size: this.size };
    if (this.md5 && md5Base64 !== undefined) {
      const got = this.md5.digest();
      if (got.toString('base64') !== md5Base64) {
        throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.', {
          extra: { ExpectedDigest: md5Base64, CalculatedDigest: got.toString('base64') },
        });
      }
      result.md5Hex = got.toString('hex');
    }
    if (this.checksum && checksum) {
      const value = await this.checksum.digest();
      let expected = checksum.expected;
      if (expected === undefined && checksum.fromTrailer) {
        const name = `x-amz-checksum-${checksum.algorithm}`;
        expected = this.checks.trailers?.()[name];
        if (expected === undefined) {
          throw new S3Error('InvalidRequest', `The x-amz-trailer header named ${name} but the body has no such trailer.`);
        }
        if (!isValidChecksumValue(checksum.algorithm, expected)) {
          throw new S3Error('InvalidRequest', `Value for ${name} trailing header is invalid.`);
        }
      }
      if (expected !== undefined && value !== expected) throw checksumMismatch(checksum.algorithm);
      result.checksum = { algorithm: checksum.algorithm, value };
    }
    return result;
  }
}
