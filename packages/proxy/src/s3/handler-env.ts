/**
 * What every S3 handler gets, and the mapping of data-path answers to S3 errors (one place).
 */
import type { Logger } from '@swiftlet/common';
import type { BucketRegistry } from './bucket-registry.js';
import type { S3Config } from './s3-config.js';
import { S3Error, s3Errors } from './s3-error.js';
import type { S3Request } from './s3-request.js';
import type { S3Storage } from './storage.js';

export interface HandlerEnv {
  storage: S3Storage;
  registry: BucketRegistry;
  config: S3Config;
  logger: Logger;
  /** Multipart cleanup (multipart/janitor.ts), when the server runs one. */
  janitor?: { settleKey(account: string, bucket: string, key: string): Promise<void> };
}

export const MAX_KEY_BYTES = 1024;

export function checkKey(key: string): void {
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
    throw new S3Error('KeyTooLongError', 'Your key is too long', {
      extra: { Size: String(Buffer.byteLength(key, 'utf8')), MaxSizeAllowed: String(MAX_KEY_BYTES) },
    });
  }
}

export function account(r: S3Request): string {
  return r.auth.credential.account;
}

/** The error for a bucket the caller's account does not have: someone else's, or no one's. */
export async function missingBucket(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Error> {
  const owner = await env.registry.owner(bucket);
  if (owner !== undefined && owner !== account(r)) return s3Errors.accessDenied();
  return s3Errors.noSuchBucket(bucket);
}

/** Fails unless the caller's account has the bucket. Returns the container's headers. */
export async function requireBucket(env: HandlerEnv, r: S3Request, bucket: string): Promise<Record<string, string>> {
  const res = await env.storage.headContainer(account(r), bucket);
  if (res.status >= 200 && res.status < 300) return res.headers;
  if (res.status === 404) throw await missingBucket(env, r, bucket);
  throw unavailable(res.status);
}

/** A data-path failure the client can do nothing about. */
export function unavailable(status: number): S3Error {
  if (status === 507 || status >= 500 || status === 0) {
    return new S3Error('ServiceUnavailable', 'Please reduce your request rate.', { cause: new Error(`backend answered ${status}`) });
  }
  return new S3Error('InternalError', 'We encountered an internal error. Please try again.', { cause: new Error(`backend answered ${status}`) });
}
