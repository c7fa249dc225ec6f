/**
 * ListMultipartUploads: the open upload records of the bucket's segments container, sorted by key
 * then initiation (upload ids start with the initiation time), with S3's prefix, delimiter,
 * key-marker, upload-id-marker and max-uploads.
 */
import { account, requireBucket, unavailable, type HandlerEnv } from '../handler-env.js';
import { s3Errors } from '../s3-error.js';
import type { S3Request, S3Response } from '../s3-request.js';
import { uriEncode } from '../sigv4.js';
import type { ObjectRow, SubdirRow } from '../storage.js';
import { S3_XMLNS, xmlDocument, type XmlNode } from '../xml.js';
import { listingTimeMs, parseRecordName, recordState, segmentsContainer } from './names.js';

/** Rows read at most to answer one request (records and parts of every upload under the prefix). */
const MAX_SCANNED_ROWS = 200_000;

interface Upload {
  key: string;
  uploadId: string;
  initiated: number;
}

export async function listMultipartUploads(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Response> {
  const prefix = r.query.get('prefix') ?? '';
  const delimiter = r.query.get('delimiter') ?? '';
  const keyMarker = r.query.get('key-marker') ?? '';
  const uploadIdMarker = keyMarker === '' ? '' : (r.query.get('upload-id-marker') ?? '');
  const encodingType = r.query.get('encoding-type');
  if (encodingType !== undefined && encodingType !== 'url') throw s3Errors.invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', encodingType);
  const maxText = r.query.get('max-uploads');
  let maxUploads = 1000;
  if (maxText !== undefined) {
    if (!/^\d+$/.test(maxText)) throw s3Errors.invalidArgument('Provided max-uploads not an integer or within integer range', 'max-uploads', maxText);
    maxUploads = Math.min(Number(maxText), 1000);
  }
  await requireBucket(env, r, bucket);
  const acct = account(r);
  const uploads: Upload[] = [];
  let marker: string | undefined;
  let scanned = 0;
  for (;;) {
    const res = await env.storage.listContainer(acct, segmentsContainer(bucket), { prefix, limit: 10000, ...(marker ? { marker } : {}) });
    if (res.status === 404) break;
    if (res.status < 200 || res.status >= 300) throw unavailable(res.status);
    for (const row of res.rows) {
      if ((row as SubdirRow).subdir !== undefined) continue;
      const o = row as ObjectRow;
      if (recordState(o.content_type) !== 'open') continue;
      const parsed = parseRecordName(o.name);
      if (!parsed || !parsed.key.startsWith(prefix)) continue;
      uploads.push({ ...parsed, initiated: parseInt(parsed.uploadId.slice(0, 12), 16) || listingTimeMs(o.last_modified) });
    }
    scanned += res.rows.length;
    if (res.rows.length < 10000 || scanned >= MAX_SCANNED_ROWS) break;
    marker = (res.rows.at(-1) as ObjectRow).name;
  }
  uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.uploadId < b.uploadId ? -1 : a.uploadId > b.uploadId ? 1 : 0));
  const after = uploads.filter((u) => (keyMarker === '' ? true : u.key > keyMarker || (uploadIdMarker !== '' && u.key === keyMarker && u.uploadId > uploadIdMarker)));

  const enc = (s: string): string => (encodingType === 'url' ? uriEncode(s, false) : s);
  const owner = { ID: acct, DisplayName: acct };
  const entries: XmlNode[] = [];
  const prefixes: string[] = [];
  let truncated = false;
  let last: Upload | undefined;
  let lastPrefix: string | undefined;
  for (const u of after) {
    let common: string | undefined;
    if (delimiter !== '') {
      const at = u.key.indexOf(delimiter, prefix.length);
      if (at >= 0) common = u.key.slice(0, at + delimiter.length);
    }
    if (common !== undefined && common === prefixes.at(-1)) continue;
    if (entries.length + prefixes.length >= maxUploads) {
      truncated = true;
      break;
    }
    if (common !== undefined) {
      prefixes.push(common);
      lastPrefix = common;
      last = undefined;
    } else {
      entries.push({
        Key: enc(u.key),
        UploadId: u.uploadId,
        Initiator: owner,
        Owner: owner,
        StorageClass: 'STANDARD',
        Initiated: new Date(u.initiated).toISOString(),
      });
      last = u;
      lastPrefix = undefined;
    }
  }
  const doc: XmlNode = {
    '@xmlns': S3_XMLNS,
    Bucket: bucket,
    KeyMarker: enc(keyMarker),
    UploadIdMarker: uploadIdMarker,
    NextKeyMarker: truncated ? enc(last?.key ?? lastPrefix ?? '') : '',
    NextUploadIdMarker: truncated ? (last?.uploadId ?? '') : '',
    ...(delimiter !== '' ? { Delimiter: enc(delimiter) } : {}),
    Prefix: enc(prefix),
    MaxUploads: maxUploads,
    ...(encodingType === 'url' ? { EncodingType: 'url' } : {}),
    IsTruncated: truncated,
    Upload: entries,
    CommonPrefixes: prefixes.map((p) => ({ Prefix: enc(p) })),
  };
  return { status: 200, headers: { 'Content-Type': 'application/xml' }, body: xmlDocument({ ListMultipartUploadsResult: doc }) };
}
