/**
 * ListObjects (v1) and ListObjectsV2 on top of the container listing. S3 counts keys and common
 * prefixes together against max-keys, which is what a Swift listing with a delimiter does with
 * `limit`; one extra row tells whether the result is truncated. A marker that names a common
 * prefix (`photos/` with delimiter `/`) resumes after everything under it, as S3 does.
 */
import { account, missingBucket, unavailable, type HandlerEnv } from './handler-env.js';
import { s3Errors } from './s3-error.js';
import type { S3Request, S3Response } from './s3-request.js';
import { uriEncode } from './sigv4.js';
import type { ObjectRow, SubdirRow } from './storage.js';
import { S3_XMLNS, xmlDocument, type XmlNode } from './xml.js';

export const MAX_KEYS = 1000;
/** Sorts after any character a key may hold after a common prefix (UTF-8 byte order). */
const AFTER_PREFIX = '\u{10FFFF}';

export function parseMaxKeys(text: string | undefined): number {
  if (text === undefined) return MAX_KEYS;
  if (!/^\d+$/.test(text)) throw s3Errors.invalidArgument('Provided max-keys not an integer or within integer range', 'max-keys', text);
  return Math.min(Number(text), MAX_KEYS);
}

/** The backend marker for a client marker: past a whole common prefix when it names one. */
export function effectiveMarker(marker: string, prefix: string, delimiter: string | undefined): string {
  if (delimiter && marker.startsWith(prefix) && marker.endsWith(delimiter)) {
    const rest = marker.slice(prefix.length);
    if (rest.indexOf(delimiter) === rest.length - delimiter.length) return marker + AFTER_PREFIX;
  }
  return marker;
}

/** Swift's `2024-05-01T10:00:00.123456` (UTC) -> S3's `2024-05-01T10:00:00.123Z`. */
export function s3Timestamp(swift: string): string {
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(swift) ? swift : `${swift}Z`);
  return Number.isNaN(t) ? new Date(0).toISOString() : new Date(t).toISOString();
}

function isSubdir(row: ObjectRow | SubdirRow): row is SubdirRow {
  return (row as SubdirRow).subdir !== undefined;
}

export function encodeToken(marker: string): string {
  return Buffer.from(marker, 'utf8').toString('base64url');
}

export function decodeToken(token: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(token)) throw s3Errors.invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
  return Buffer.from(token, 'base64url').toString('utf8');
}

export async function listObjects(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Response> {
  const v2 = r.query.get('list-type') === '2';
  if (r.query.has('list-type') && !v2) throw s3Errors.invalidArgument('Invalid List Type specified', 'list-type', r.query.get('list-type'));
  const prefix = r.query.get('prefix') ?? '';
  const delimiter = r.query.get('delimiter') || undefined;
  const maxKeys = parseMaxKeys(r.query.get('max-keys'));
  const encodingType = r.query.get('encoding-type');
  if (encodingType !== undefined && encodingType !== 'url') {
    throw s3Errors.invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', encodingType);
  }
  const enc = (s: string): string => (encodingType === 'url' ? uriEncode(s, false) : s);
  const fetchOwner = v2 ? r.query.get('fetch-owner') === 'true' : true;
  const token = v2 ? r.query.get('continuation-token') : undefined;
  const startAfter = v2 ? r.query.get('start-after') : undefined;
  const marker = v2 ? (token !== undefined ? decodeToken(token) : (startAfter ?? '')) : (r.query.get('marker') ?? '');

  let rows: Array<ObjectRow | SubdirRow> = [];
  if (maxKeys > 0) {
    const res = await env.storage.listContainer(account(r), bucket, {
      ...(prefix !== '' ? { prefix } : {}),
      ...(delimiter ? { delimiter } : {}),
      ...(marker !== '' ? { marker: effectiveMarker(marker, prefix, delimiter) } : {}),
      limit: maxKeys + 1,
    });
    if (res.status === 404) throw await missingBucket(env, r, bucket);
    if (res.status < 200 || res.status >= 300) throw unavailable(res.status);
    rows = res.rows;
  } else {
    const head = await env.storage.headContainer(account(r), bucket);
    if (head.status === 404) throw await missingBucket(env, r, bucket);
    if (head.status >= 300) throw unavailable(head.status);
  }
  const truncated = rows.length > maxKeys;
  const page = rows.slice(0, maxKeys);
  const owner = { ID: account(r), DisplayName: account(r) };
  const contents: XmlNode[] = [];
  const prefixes: XmlNode[] = [];
  for (const row of page) {
    if (isSubdir(row)) {
      prefixes.push({ Prefix: enc(row.subdir) });
    } else {
      contents.push({
        Key: enc(row.name),
        LastModified: s3Timestamp(row.last_modified),
        ETag: `"${row.hash}"`,
        Size: row.bytes,
        ...(fetchOwner ? { Owner: owner } : {}),
        StorageClass: 'STANDARD',
      });
    }
  }
  const last = page.at(-1);
  const lastName = last === undefined ? undefined : isSubdir(last) ? last.subdir : last.name;
  let doc: XmlNode;
  if (v2) {
    doc = {
      '@xmlns': S3_XMLNS,
      Name: bucket,
      Prefix: enc(prefix),
      MaxKeys: maxKeys,
      KeyCount: page.length,
      Delimiter: delimiter !== undefined ? enc(delimiter) : undefined,
      IsTruncated: truncated,
      ContinuationToken: token,
      NextContinuationToken: truncated && lastName !== undefined ? encodeToken(lastName) : undefined,
      StartAfter: startAfter !== undefined ? enc(startAfter) : undefined,
      Contents: contents,
      CommonPrefixes: prefixes,
      EncodingType: encodingType,
    };
  } else {
    doc = {
      '@xmlns': S3_XMLNS,
      Name: bucket,
      Prefix: enc(prefix),
      Marker: enc(r.query.get('marker') ?? ''),
      MaxKeys: maxKeys,
      Delimiter: delimiter !== undefined ? enc(delimiter) : undefined,
      IsTruncated: truncated,
      // S3 sends NextMarker only with a delimiter; without one the client uses the last key.
      NextMarker: truncated && delimiter !== undefined && lastName !== undefined ? enc(lastName) : undefined,
      Contents: contents,
      CommonPrefixes: prefixes,
      EncodingType: encodingType,
    };
  }
  return { status: 200, headers: { 'Content-Type': 'application/xml' }, body: xmlDocument({ ListBucketResult: doc }) };
}

