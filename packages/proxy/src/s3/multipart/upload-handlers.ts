/**
 * The multipart upload operations: CreateMultipartUpload, UploadPart, UploadPartCopy, ListParts,
 * CompleteMultipartUpload, AbortMultipartUpload (ListMultipartUploads is in list-uploads.ts).
 *
 * Completing writes no data: it checks the parts against the request (InvalidPart,
 * InvalidPartOrder, EntityTooSmall), PUTs the manifest into the bucket, then marks the upload
 * record "done". A done record is the durable note that its segments belong to that manifest: the
 * janitor removes them once the key holds a newer object (overwrite, delete), never before.
 *
 * A second Complete of a completed upload answers as S3 does for a retried Complete: 200 with the
 * same ETag if the key still holds that upload's object and the parts asked are its parts;
 * otherwise NoSuchUpload (as for an aborted or unknown upload).
 */
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { account, checkKey, requireBucket, unavailable, type HandlerEnv } from '../handler-env.js';
import { backendMetadataFromRequest, copyableMetadata, lastModifiedMs } from '../object-metadata.js';
import { parseCopySource, refuseUnsupported, storeUpload } from '../object-handlers.js';
import { S3Error, s3Errors } from '../s3-error.js';
import type { S3Request, S3Response } from '../s3-request.js';
import { readSmallBody } from '../small-body.js';
import type { BackendResponse, ObjectRow, S3Storage, SubdirRow } from '../storage.js';
import { parseXml, S3_XMLNS, xmlDocument, type XmlNode } from '../xml.js';
import { rememberSegmentsContainer } from './janitor.js';
import { isManifest, manifestHeaders, manifestUploadId, multipartEtag, MANIFEST_CONTENT_TYPE_SYSMETA, SYSMETA_ETAG, type Manifest } from './manifest.js';
import { assembledSource, loadManifest } from './manifest-reader.js';
import {
  isUploadId,
  newUploadId,
  partName,
  partNumberOf,
  partPrefix,
  recordContentType,
  recordName,
  recordState,
  segmentsContainer,
  type UploadState,
} from './names.js';

/** S3's smallest part (all but the last). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10000;
const XML = { 'Content-Type': 'application/xml' };
/** Sysmeta of a done record: the manifest's backend timestamp (the janitor compares against it). */
export const RECORD_MANIFEST_TIMESTAMP = 'X-Object-Sysmeta-S3-Mpu-Manifest-Timestamp';

export function noSuchUpload(uploadId: string): S3Error {
  return new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { extra: { UploadId: uploadId } });
}

function ok(status: number): boolean {
  return status >= 200 && status < 300;
}

function partNumberParam(r: S3Request): number {
  const text = r.query.get('partNumber') ?? '';
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > MAX_PARTS) {
    throw s3Errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', text);
  }
  return Number(text);
}

interface UploadRecord {
  state: UploadState;
  headers: Record<string, string>;
}

/** The upload's record, or NoSuchUpload (also for a missing bucket's error, checked first). */
async function loadRecord(env: HandlerEnv, r: S3Request, bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
  if (!isUploadId(uploadId)) {
    await requireBucket(env, r, bucket);
    throw noSuchUpload(uploadId);
  }
  const res = await env.storage.headObject(account(r), segmentsContainer(bucket), recordName(key, uploadId));
  if (res.status === 404) {
    await requireBucket(env, r, bucket);
    throw noSuchUpload(uploadId);
  }
  if (!ok(res.status)) throw unavailable(res.status);
  return { state: recordState(res.headers['content-type'] ?? '') ?? 'open', headers: res.headers };
}

async function openRecord(env: HandlerEnv, r: S3Request, bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
  const rec = await loadRecord(env, r, bucket, key, uploadId);
  if (rec.state !== 'open') throw noSuchUpload(uploadId);
  return rec;
}

/** Writes (or rewrites) the record with its metadata and state. */
async function putRecord(env: HandlerEnv, acct: string, bucket: string, key: string, uploadId: string, meta: Record<string, string>, state: UploadState): Promise<void> {
  const res = await env.storage.putObject(acct, segmentsContainer(bucket), recordName(key, uploadId), Buffer.alloc(0), {
    ...meta,
    'Content-Type': recordContentType(state),
    'Content-Length': '0',
  });
  if (!ok(res.status)) throw unavailable(res.status);
}

/** The metadata of a record that belongs to the final object (and survives a rewrite). */
function recordMetadata(headers: Record<string, string>): Record<string, string> {
  const out = copyableMetadata(headers);
  delete out['Content-Type'];
  const ct = headers[MANIFEST_CONTENT_TYPE_SYSMETA.toLowerCase()];
  if (ct !== undefined) out[MANIFEST_CONTENT_TYPE_SYSMETA] = ct;
  return out;
}

export async function createMultipartUpload(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  refuseUnsupported(r);
  await requireBucket(env, r, bucket);
  const acct = account(r);
  const meta = backendMetadataFromRequest(r.headers);
  const segments = segmentsContainer(bucket);
  const head = await env.storage.headContainer(acct, segments);
  if (head.status === 404) {
    // Known to the janitor before it exists, so no upload can escape its expiry.
    await rememberSegmentsContainer(env, acct, bucket);
    const c = await env.storage.putContainer(acct, segments);
    if (!ok(c.status)) throw unavailable(c.status);
  } else if (!ok(head.status)) throw unavailable(head.status);
  const uploadId = newUploadId();
  const { 'Content-Type': contentType, ...rest } = meta;
  await putRecord(env, acct, bucket, key, uploadId, { ...rest, [MANIFEST_CONTENT_TYPE_SYSMETA]: contentType ?? 'binary/octet-stream' }, 'open');
  return {
    status: 200,
    headers: XML,
    body: xmlDocument({ InitiateMultipartUploadResult: { '@xmlns': S3_XMLNS, Bucket: bucket, Key: key, UploadId: uploadId } }),
  };
}

export async function uploadPart(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  const part = partNumberParam(r);
  const uploadId = r.query.get('uploadId') ?? '';
  if (r.headers['x-amz-copy-source'] !== undefined) return uploadPartCopy(env, r, bucket, key, uploadId, part);
  await openRecord(env, r, bucket, key, uploadId);
  const stored = await storeUpload(env, r, segmentsContainer(bucket), partName(key, uploadId, part), { 'Content-Type': 'application/octet-stream' });
  const out: Record<string, string> = { ETag: `"${stored.etag}"` };
  if (stored.checksum) out[`x-amz-checksum-${stored.checksum.algorithm}`] = stored.checksum.value;
  return { status: 200, headers: out };
}

function destroyBody(res: BackendResponse): void {
  (res.body as Readable | undefined)?.destroy?.();
}

/** `x-amz-copy-source-range: bytes=first-last` (both required, as S3). */
function copySourceRange(text: string | undefined): { first: number; last: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^bytes=(\d+)-(\d+)$/.exec(text.trim());
  if (!m || Number(m[2]) < Number(m[1])) {
    throw s3Errors.invalidArgument('The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy', 'x-amz-copy-source-range', text);
  }
  return { first: Number(m[1]), last: Number(m[2]) };
}

async function uploadPartCopy(env: HandlerEnv, r: S3Request, bucket: string, key: string, uploadId: string, part: number): Promise<S3Response> {
  const src = parseCopySource(r.headers['x-amz-copy-source'] as string);
  checkKey(src.key);
  const wanted = copySourceRange(r.headers['x-amz-copy-source-range']);
  await openRecord(env, r, bucket, key, uploadId);
  const acct = account(r);
  const head = await env.storage.headObject(acct, src.bucket, src.key);
  if (head.status === 404) {
    const c = await env.storage.headContainer(acct, src.bucket);
    if (c.status === 404) throw s3Errors.noSuchBucket(src.bucket);
    throw s3Errors.noSuchKey(src.key);
  }
  if (!ok(head.status)) throw unavailable(head.status);
  const manifest = isManifest(head.headers);
  const size = manifest ? Number(head.headers['x-object-sysmeta-s3-mpu-size'] ?? '0') : Number(head.headers['content-length'] ?? '0');
  if (wanted && wanted.last >= size) {
    throw new S3Error('InvalidRange', 'The requested range is not satisfiable', { extra: { RangeRequested: r.headers['x-amz-copy-source-range'] ?? '', ActualObjectSize: String(size) } });
  }
  const start = wanted?.first ?? 0;
  const end = wanted?.last ?? size - 1;
  const length = Math.max(end - start + 1, 0);
  if (length > MAX_PART_BYTES) throw new S3Error('InvalidRequest', 'The specified copy range is larger than the maximum allowable size for a part');
  let source: BackendResponse;
  if (manifest) {
    source = await assembledSource(env, acct, src.bucket, src.key, head, { start, end });
  } else if (length === 0) {
    source = { status: 200, headers: {}, body: Readable.from([]) };
  } else {
    source = await env.storage.getObject(acct, src.bucket, src.key, wanted ? { Range: `bytes=${start}-${end}` } : {});
    if ((source.headers['etag'] ?? '') !== (head.headers['etag'] ?? '') || (source.status !== 200 && source.status !== 206)) {
      destroyBody(source);
      throw new S3Error('PreconditionFailed', 'The copy source changed while it was read; retry', { extra: { Condition: 'x-amz-copy-source-if-match' } });
    }
  }
  const res = await env.storage.putObject(acct, segmentsContainer(bucket), partName(key, uploadId, part), source.body as Readable, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(length),
  });
  if (!ok(res.status)) {
    destroyBody(source);
    throw unavailable(res.status);
  }
  return {
    status: 200,
    headers: XML,
    body: xmlDocument({ CopyPartResult: { '@xmlns': S3_XMLNS, LastModified: new Date(lastModifiedMs(res.headers)).toISOString(), ETag: `"${res.headers['etag'] ?? ''}"` } }),
  };
}

/** The stored parts of an upload, in part order (after part `afterPart`, at most `limit`). */
async function listPartRows(env: { storage: S3Storage }, acct: string, bucket: string, key: string, uploadId: string, afterPart = 0, limit = MAX_PARTS + 1): Promise<ObjectRow[]> {
  const prefix = partPrefix(key, uploadId);
  const rows: ObjectRow[] = [];
  let marker = afterPart > 0 ? partName(key, uploadId, afterPart) : undefined;
  while (rows.length < limit) {
    const want = Math.min(10000, limit - rows.length);
    const res = await env.storage.listContainer(acct, segmentsContainer(bucket), { prefix, ...(marker ? { marker } : {}), limit: want });
    if (res.status === 404) return rows;
    if (!ok(res.status)) throw unavailable(res.status);
    for (const x of res.rows) {
      if ((x as SubdirRow).subdir === undefined && /^\d{5}$/.test((x as ObjectRow).name.slice(prefix.length))) rows.push(x as ObjectRow);
    }
    if (res.rows.length < want) return rows;
    marker = (res.rows.at(-1) as ObjectRow).name;
  }
  return rows;
}

/** Removes the segments, then the record, of an upload (parts first: a record left means "retry"). */
export async function removeUpload(env: { storage: S3Storage; config: { multiDeleteConcurrency: number } }, acct: string, bucket: string, key: string, uploadId: string): Promise<number> {
  const limit = pLimit(env.config.multiDeleteConcurrency);
  const segments = segmentsContainer(bucket);
  let removed = 0;
  for (;;) {
    const rows = await listPartRows(env, acct, bucket, key, uploadId, 0, 1000);
    if (rows.length === 0) break;
    const answers = await Promise.all(rows.map((row) => limit(() => env.storage.deleteObject(acct, segments, row.name))));
    const failed = answers.filter((a) => !ok(a.status) && a.status !== 404);
    if (failed.length > 0) throw unavailable(failed[0]!.status);
    removed += rows.length;
  }
  const res = await env.storage.deleteObject(acct, segments, recordName(key, uploadId));
  if (!ok(res.status) && res.status !== 404) throw unavailable(res.status);
  return removed;
}

export async function abortMultipartUpload(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  const uploadId = r.query.get('uploadId') ?? '';
  const rec = await openRecord(env, r, bucket, key, uploadId);
  const acct = account(r);
  // A Complete that wrote its manifest but not its record: the parts are the object's now.
  const current = await env.storage.headObject(acct, bucket, key);
  if (ok(current.status) && manifestUploadId(current.headers) === uploadId) {
    await putRecord(env, acct, bucket, key, uploadId, { ...recordMetadata(rec.headers), [RECORD_MANIFEST_TIMESTAMP]: current.headers['x-backend-timestamp'] ?? current.headers['x-timestamp'] ?? '0' }, 'done');
    throw noSuchUpload(uploadId);
  }
  await removeUpload(env, acct, bucket, key, uploadId);
  return { status: 204 };
}

function intParam(r: S3Request, name: string, dflt: number, max: number): number {
  const text = r.query.get(name);
  if (text === undefined || text === '') return dflt;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw s3Errors.invalidArgument(`Provided ${name} not an integer or within integer range`, name, text);
  }
  return Math.min(Number(text), max);
}

export async function listParts(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  const uploadId = r.query.get('uploadId') ?? '';
  const maxParts = intParam(r, 'max-parts', 1000, 1000);
  const marker = intParam(r, 'part-number-marker', 0, MAX_PARTS);
  const rec = await openRecord(env, r, bucket, key, uploadId);
  const acct = account(r);
  const rows = await listPartRows(env, acct, bucket, key, uploadId, marker, maxParts + 1);
  const truncated = rows.length > maxParts;
  const page = rows.slice(0, maxParts);
  const owner = { ID: acct, DisplayName: acct };
  const doc: XmlNode = {
    '@xmlns': S3_XMLNS,
    Bucket: bucket,
    Key: key,
    UploadId: uploadId,
    Initiator: owner,
    Owner: owner,
    StorageClass: 'STANDARD',
    PartNumberMarker: marker,
    NextPartNumberMarker: page.length > 0 ? partNumberOf(page.at(-1)!.name) : marker,
    MaxParts: maxParts,
    IsTruncated: truncated,
    Part: page.map((row) => ({
      PartNumber: partNumberOf(row.name),
      LastModified: new Date(listingTime(row.last_modified)).toISOString(),
      ETag: `"${row.hash}"`,
      Size: row.bytes,
    })),
  };
  void rec;
  return { status: 200, headers: XML, body: xmlDocument({ ListPartsResult: doc }) };
}

function listingTime(lm: string): number {
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(lm) ? lm : `${lm}Z`);
  return Number.isNaN(t) ? 0 : t;
}

interface RequestedPart {
  number: number;
  etag: string;
}

function parseCompleteBody(text: string): RequestedPart[] {
  const doc = parseXml(text);
  const root = doc?.['CompleteMultipartUpload'];
  if (!root || typeof root !== 'object') throw s3Errors.malformedXML();
  const raw = (root as Record<string, unknown>)['Part'];
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0 || list.length > MAX_PARTS) throw s3Errors.malformedXML();
  return list.map((p) => {
    if (!p || typeof p !== 'object') throw s3Errors.malformedXML();
    const o = p as Record<string, unknown>;
    const n = String(o['PartNumber'] ?? '').trim();
    const e = String(o['ETag'] ?? '').trim().replace(/^"(.*)"$/, '$1');
    if (!/^\d+$/.test(n) || e === '') throw s3Errors.malformedXML();
    return { number: Number(n), etag: e.toLowerCase() };
  });
}

function invalidPart(uploadId: string, p: RequestedPart): S3Error {
  return new S3Error('InvalidPart', "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.", {
    extra: { UploadId: uploadId, PartNumber: String(p.number), ETag: p.etag },
  });
}

function completeResult(bucket: string, key: string, etag: string): S3Response {
  return {
    status: 200,
    headers: XML,
    body: xmlDocument({ CompleteMultipartUploadResult: { '@xmlns': S3_XMLNS, Location: `/${bucket}/${key}`, Bucket: bucket, Key: key, ETag: `"${etag}"` } }),
  };
}

/** A Complete retried after success: the same answer if the key still holds that upload's object. */
async function completedAgain(env: HandlerEnv, r: S3Request, bucket: string, key: string, uploadId: string, requested: RequestedPart[]): Promise<S3Response> {
  const acct = account(r);
  const res = await env.storage.getObject(acct, bucket, key);
  if (!ok(res.status) || manifestUploadId(res.headers) !== uploadId) {
    destroyBody(res);
    throw noSuchUpload(uploadId);
  }
  const { manifest, headers } = await loadManifest(env.storage, acct, bucket, key, res);
  const same = manifest.parts.length === requested.length && manifest.parts.every((p, i) => p.n === requested[i]!.number && p.etag === requested[i]!.etag);
  if (!same) throw noSuchUpload(uploadId);
  return completeResult(bucket, key, headers[SYSMETA_ETAG.toLowerCase()] ?? '');
}

export async function completeMultipartUpload(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  const uploadId = r.query.get('uploadId') ?? '';
  const rec = await loadRecord(env, r, bucket, key, uploadId);
  const requested = parseCompleteBody((await readSmallBody(r, 4 * 1024 * 1024)).toString('utf8'));
  for (let i = 1; i < requested.length; i++) {
    if (requested[i]!.number <= requested[i - 1]!.number) {
      throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.', { extra: { UploadId: uploadId } });
    }
  }
  if (rec.state === 'done') return completedAgain(env, r, bucket, key, uploadId, requested);
  const acct = account(r);
  const stored = new Map((await listPartRows(env, acct, bucket, key, uploadId)).map((row) => [partNumberOf(row.name), row]));
  const segments = segmentsContainer(bucket);
  const manifest: Manifest = { v: 1, container: segments, uploadId, parts: [] };
  requested.forEach((p, i) => {
    const row = stored.get(p.number);
    if (!row || row.hash !== p.etag) throw invalidPart(uploadId, p);
    if (i < requested.length - 1 && row.bytes < MIN_PART_BYTES) {
      throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
        extra: { UploadId: uploadId, PartNumber: String(p.number), ProposedSize: String(row.bytes), MinSizeAllowed: String(MIN_PART_BYTES) },
      });
    }
    manifest.parts.push({ n: p.number, name: row.name, bytes: row.bytes, etag: row.hash });
  });
  const etag = multipartEtag(manifest.parts.map((p) => p.etag));
  const body = Buffer.from(JSON.stringify(manifest));
  const objectMeta = copyableMetadata(rec.headers);
  const headers: Record<string, string> = {
    ...objectMeta,
    'Content-Type': rec.headers[MANIFEST_CONTENT_TYPE_SYSMETA.toLowerCase()] ?? 'binary/octet-stream',
    ...manifestHeaders(manifest, etag),
    'Content-Length': String(body.length),
  };
  const res = await env.storage.putObject(acct, bucket, key, body, headers);
  if (res.status === 404) await requireBucket(env, r, bucket);
  if (!ok(res.status)) throw unavailable(res.status);
  const manifestTs = res.headers['x-backend-timestamp'] ?? res.headers['x-timestamp'] ?? '0';
  try {
    await putRecord(env, acct, bucket, key, uploadId, { ...recordMetadata(rec.headers), [RECORD_MANIFEST_TIMESTAMP]: manifestTs }, 'done');
  } catch (err) {
    // The object is complete; the record stays "open" and the janitor settles it (never
    // removing segments a manifest names).
    env.logger.warn({ err, requestId: r.requestId, uploadId }, 'multipart object written, upload record not marked done');
  }
  // Uploads of this key completed earlier are likely superseded now: settled in the background.
  env.janitor?.settleKey(acct, bucket, key).catch((err: unknown) => env.logger.warn({ err, requestId: r.requestId, key }, 'multipart janitor: key not settled'));
  return completeResult(bucket, key, etag);
}

export { isManifest };
