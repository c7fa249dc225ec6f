/**
 * S3's additional checksums (`x-amz-checksum-<algorithm>`): CRC32 (zlib), CRC32C and CRC64NVME (the
 * AWS SDK's own implementations, @aws-sdk/checksums, 8x faster than @aws-crypto/crc32c's), SHA1 and
 * SHA256. Values travel as base64 of the big-endian digest, as S3 sends them.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32c, Crc64Nvme } from '@aws-sdk/checksums/crc';
import { S3Error } from './s3-error.js';

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** Digest sizes in bytes, to reject malformed values before any data is read. */
const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 };

export interface ChecksumHasher {
  readonly algorithm: ChecksumAlgorithm;
  update(data: Uint8Array): void;
  /** base64 of the big-endian digest. */
  digest(): Promise<string>;
}

function u32be(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString('base64');
}

export function createChecksum(algorithm: ChecksumAlgorithm): ChecksumHasher {
  switch (algorithm) {
    case 'crc32': {
      let value = 0;
      return { algorithm, update: (d) => void (value = crc32(d, value)), digest: async () => u32be(value) };
    }
    case 'crc32c': {
      const h = new Crc32c();
      return { algorithm, update: (d) => h.update(d), digest: async () => Buffer.from(await h.digest()).toString('base64') };
    }
    case 'crc64nvme': {
      const h = new Crc64Nvme();
      return { algorithm, update: (d) => h.update(d), digest: async () => Buffer.from(await h.digest()).toString('base64') };
    }
    case 'sha1':
    case 'sha256': {
      const h = createHash(algorithm);
      return { algorithm, update: (d) => void h.update(d), digest: async () => h.digest('base64') };
    }
  }
}

/** `x-amz-checksum-crc32` -> `crc32`; anything else -> undefined. */
export function checksumAlgorithmOfHeader(name: string): ChecksumAlgorithm | undefined {
  const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(name.toLowerCase());
  if (!m) return undefined;
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(m[1]!) ? (m[1] as ChecksumAlgorithm) : undefined;
}

export function isValidChecksumValue(algorithm: ChecksumAlgorithm, value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
  return Buffer.from(value, 'base64').length === DIGEST_BYTES[algorithm];
}

/** Upper-case name as S3 writes it in messages (CRC32, CRC64NVME, SHA256). */
export function checksumDisplayName(algorithm: ChecksumAlgorithm): string {
  return algorithm.toUpperCase();
}

export function checksumMismatch(algorithm: ChecksumAlgorithm): S3Error {
  return new S3Error('BadDigest', `The ${checksumDisplayName(algorithm)} you specified did not match the calculated checksum.`);
}

/** The one checksum header a request carries (several -> InvalidRequest; a bad value -> InvalidRequest). */
export function checksumFromHeaders(headers: Record<string, string>): { algorithm: ChecksumAlgorithm; value: string } | undefined {
  let found: { algorithm: ChecksumAlgorithm; value: string } | undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith('x-amz-checksum-') || name === 'x-amz-checksum-mode' || name === 'x-amz-checksum-type') continue;
    const algorithm = checksumAlgorithmOfHeader(name);
    if (!algorithm) throw new S3Error('InvalidRequest', `The algorithm type you specified in ${name} header is invalid.`);
    if (found) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    if (!isValidChecksumValue(algorithm, value)) throw new S3Error('InvalidRequest', `Value for ${name} header is invalid.`);
    found = { algorithm, value };
  }
  return found;
}
