/**
 * Where a multipart upload lives. Parts are ordinary objects of the bucket's hidden segments
 * container `<bucket>+segments` in the bucket owner's account ("+" cannot occur in a bucket name,
 * and ListBuckets hides such containers), as in Swift's s3api:
 *
 *   <key>/<uploadId>                 the upload record: empty body, the final object's metadata;
 *                                    its Content-Type says whether it is open or completed
 *   <key>/<uploadId>/<part:05d>      each part, stored and verified like any upload
 *
 * A record name ends in "/" + 32 hex digits and a part name in "/" + 5 digits, so the two never
 * mix up whatever the key. An upload id starts with the initiation time (ms, 12 hex digits), so
 * uploads of one key sort by initiation as S3 lists them, then 20 random hex digits.
 */
import { randomBytes } from 'node:crypto';

export const SEGMENTS_SUFFIX = '+segments';
export const RECORD_CONTENT_TYPE = 'application/x-swiftlet-mpu-upload';
export type UploadState = 'open' | 'done';

export function segmentsContainer(bucket: string): string {
  return `${bucket}${SEGMENTS_SUFFIX}`;
}

export function newUploadId(nowMs = Date.now()): string {
  return nowMs.toString(16).padStart(12, '0').slice(-12) + randomBytes(10).toString('hex');
}

export function isUploadId(id: string): boolean {
  return /^[0-9a-f]{32}$/.test(id);
}

export function recordName(key: string, uploadId: string): string {
  return `${key}/${uploadId}`;
}

export function partPrefix(key: string, uploadId: string): string {
  return `${key}/${uploadId}/`;
}

export function partName(key: string, uploadId: string, part: number): string {
  return `${partPrefix(key, uploadId)}${String(part).padStart(5, '0')}`;
}

/** The key and upload id of a record name; undefined for a part (or anything else). */
export function parseRecordName(name: string): { key: string; uploadId: string } | undefined {
  const m = /^([\s\S]*)\/([0-9a-f]{32})$/.exec(name);
  return m ? { key: m[1] as string, uploadId: m[2] as string } : undefined;
}

/** The part number of a part name. */
export function partNumberOf(name: string): number {
  return Number(name.slice(-5));
}

export function recordContentType(state: UploadState): string {
  return `${RECORD_CONTENT_TYPE};state=${state}`;
}

/** The state of a record from its listing row's content type; undefined if it is not a record. */
export function recordState(contentType: string): UploadState | undefined {
  if (!contentType.startsWith(RECORD_CONTENT_TYPE)) return undefined;
  return /state=done/.test(contentType) ? 'done' : 'open';
}

/** A listing's last_modified (Swift's, UTC without zone) in ms. */
export function listingTimeMs(lastModified: string): number {
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(lastModified) ? lastModified : `${lastModified}Z`);
  return Number.isNaN(t) ? 0 : t;
}

/** A Swift timestamp header (`1700000000.12345[_offset]`) in seconds. */
export function timestampSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number.parseFloat(value);
  return Number.isFinite(n) ? n : undefined;
}
