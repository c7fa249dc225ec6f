/**
 * Object operations: PutObject, CopyObject, GetObject, HeadObject, DeleteObject.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { evaluateConditions, hasConditions, type Conditions } from './conditional.js';
import { account, checkKey, missingBucket, unavailable, type HandlerEnv } from './handler-env.js';
import {
  backendMetadataFromRequest,
  checksumMetadata,
  checksumPostHeaders,
  copyableMetadata,
  httpDate,
  lastModifiedMs,
  objectResponseHeaders,
  RESPONSE_OVERRIDES,
  s3Etag,
  storedChecksum,
} from './object-metadata.js';
import { parseRange, resolveRange } from './range.js';
import type { ChecksumAlgorithm } from './checksums.js';
import { S3Error, s3Errors } from './s3-error.js';
import type { S3Request, S3Response } from './s3-request.js';
import { safeDecode } from './sigv4.js';
import { openUploadBody } from './upload-body.js';
import { xmlDocument, S3_XMLNS } from './xml.js';
import { isManifest } from './multipart/manifest.js';
import { assembledSource, readManifestObject } from './multipart/manifest-reader.js';
import type { BackendResponse } from './storage.js';

/** Request headers S3 knows but this gateway does not implement: refused rather than ignored. */
const UNSUPPORTED_PUT_HEADERS = [
  'x-amz-tagging',
  'x-amz-object-lock-mode',
  'x-amz-object-lock-retain-until-date',
  'x-amz-object-lock-legal-hold',
  'x-amz-website-redirect-location',
  'x-amz-server-side-encryption-customer-algorithm',
  'x-amz-server-side-encryption-aws-kms-key-id',
  'x-amz-grant-read',
  'x-amz-grant-write',
  'x-amz-grant-full-control',
  'x-amz-grant-read-acp',
  'x-amz-grant-write-acp',
];

export function refuseUnsupported(r: S3Request): void {
  for (const h of UNSUPPORTED_PUT_HEADERS) {
    if (r.headers[h] !== undefined) throw s3Errors.notImplemented(`A header you provided implies functionality that is not implemented: ${h}`);
  }
  const sc = r.headers['x-amz-storage-class'];
  if (sc !== undefined && sc !== 'STANDARD') throw new S3Error('InvalidStorageClass', 'The storage class you specified is not valid', { extra: { StorageClassRequested: sc } });
  const acl = r.headers['x-amz-acl'];
  if (acl !== undefined && acl !== 'private' && acl !== 'bucket-owner-full-control') {
    throw s3Errors.notImplemented(`Canned ACL ${acl} is not implemented: objects are private to their account`);
  }
  const sse = r.headers['x-amz-server-side-encryption'];
  if (sse !== undefined && sse !== 'AES256') throw s3Errors.notImplemented(`Server-side encryption ${sse} is not implemented`);
}

async function objectNotFound(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Error> {
  const c = await env.storage.headContainer(account(r), bucket);
  if (c.status === 404) return missingBucket(env, r, bucket);
  return s3Errors.noSuchKey(key);
}

async function writeFailed(env: HandlerEnv, r: S3Request, bucket: string, res: BackendResponse): Promise<S3Error> {
  if (res.status === 404) return missingBucket(env, r, bucket);
  if (res.status === 422) return new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
  if (res.status === 499) return new S3Error('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header');
  if (res.status === 408) return new S3Error('RequestTimeout', 'Your socket connection to the server was not read from or written to within the timeout period.');
  if (res.status === 413) return new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
  return unavailable(res.status);
}

export async function putObject(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  refuseUnsupported(r);
  if (r.headers['x-amz-copy-source'] !== undefined) return copyObject(env, r, bucket, key);
  if (r.headers['if-none-match'] !== undefined || r.headers['if-match'] !== undefined) {
    throw s3Errors.notImplemented('Conditional writes (If-Match / If-None-Match on PUT) are not implemented');
  }
  const meta = backendMetadataFromRequest(r.headers);
  const stored = await storeUpload(env, r, bucket, key, meta);
  const out: Record<string, string> = { ETag: `"${stored.etag}"` };
  if (stored.checksum) out[`x-amz-checksum-${stored.checksum.algorithm}`] = stored.checksum.value;
  return { status: 200, headers: out };
}

/**
 * Streams the request body, verified, into object `name` of container `container` (the bucket, or
 * its segments container for a multipart part). Returns the stored ETag and checksum.
 */
export async function storeUpload(
  env: HandlerEnv,
  r: S3Request,
  container: string,
  name: string,
  meta: Record<string, string>,
  onMissingContainer?: () => Promise<S3Error>,
): Promise<{ etag: string; size: number; checksum?: { algorithm: ChecksumAlgorithm; value: string } }> {
  const body = await openUploadBody(r, env.config);
  const headers: Record<string, string> = { ...meta, ...checksumMetadata(body.storedChecksum) };
  if (body.length !== undefined) headers['Content-Length'] = String(body.length);
  if (body.md5Hex) headers['ETag'] = body.md5Hex;
  let res: BackendResponse;
  try {
    // With Content-MD5 the verifier hashes the body and fails it before its last byte goes on.
    const put = env.storage.putObject(account(r), container, name, body.data, headers, body.md5Hex ? { bodyMd5: body.md5Hex } : {});
    // A failed check answers at once, whatever the data path is still doing with the (short)
    // body: its object servers never get the last bytes, so they store nothing.
    const failed = body.done.then(
      () => new Promise<never>(() => undefined),
      (err: unknown) => ({ failed: err }),
    );
    const first = await Promise.race([put, failed]);
    if ('failed' in first) {
      put.catch((err: unknown) => env.logger.warn({ err, requestId: r.requestId }, 'backend PUT after a failed upload check'));
      throw body.failure() ?? first.failed;
    }
    res = first;
  } catch (err) {
    body.abort();
    throw body.failure() ?? err;
  }
  // A failed check wins over whatever the data path answered: it is why the PUT failed.
  const failure = body.failure();
  if (failure) throw failure;
  if (res.status < 200 || res.status >= 300) {
    body.abort();
    if (res.status === 404 && onMissingContainer) throw await onMissingContainer();
    throw await writeFailed(env, r, container, res);
  }
  const result = await body.done;
  r.bytesIn = result.size;
  if (!body.storedChecksum && result.checksum) {
    const post = await env.storage.postObject(account(r), container, name, checksumPostHeaders(meta, result.checksum));
    if (post.status < 200 || post.status >= 300) {
      env.logger.warn({ requestId: r.requestId, container, name, status: post.status }, 'object stored, but its checksum could not be attached');
    }
  }
  const checksum = body.storedChecksum ?? result.checksum;
  return { etag: res.headers['etag'] ?? result.md5Hex ?? '', size: result.size, ...(checksum ? { checksum } : {}) };
}

function conditionsOf(h: Record<string, string>, prefix = ''): Conditions {
  const c: Conditions = {};
  const get = (n: string): string | undefined => h[`${prefix}${n}`];
  const im = get('if-match');
  const inm = get('if-none-match');
  const ims = get('if-modified-since');
  const ius = get('if-unmodified-since');
  if (im !== undefined) c.ifMatch = im;
  if (inm !== undefined) c.ifNoneMatch = inm;
  if (ims !== undefined) c.ifModifiedSince = ims;
  if (ius !== undefined) c.ifUnmodifiedSince = ius;
  return c;
}

function preconditionFailed(condition: string): S3Error {
  return new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { extra: { Condition: condition } });
}

/** Cuts a whole-object stream down to [start, end] (when a backend ignored the Range). */
class ByteWindow extends Transform {
  private offset = 0;
  constructor(
    private readonly first: number,
    private readonly last: number,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const from = Math.max(this.first - this.offset, 0);
    const to = Math.min(this.last + 1 - this.offset, chunk.length);
    if (to > from) this.push(chunk.subarray(from, to));
    this.offset += chunk.length;
    cb();
  }
}

function destroyBody(res: BackendResponse): void {
  const b = res.body as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
  b?.destroy?.();
}

/** GetObject and HeadObject. */
export async function getObject(env: HandlerEnv, r: S3Request, bucket: string, key: string, head: boolean): Promise<S3Response> {
  checkKey(key);
  const partNumberText = r.query.get('partNumber');
  let partNumber: number | undefined;
  if (partNumberText !== undefined) {
    if (!/^\d+$/.test(partNumberText) || Number(partNumberText) < 1 || Number(partNumberText) > 10000) {
      throw s3Errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', partNumberText);
    }
    if (r.headers['range'] !== undefined) throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter');
    partNumber = Number(partNumberText);
  }
  for (const name of r.query.keys()) {
    if (name.startsWith('response-') && RESPONSE_OVERRIDES[name] === undefined) {
      throw s3Errors.invalidArgument(`${name} is not a valid response override`, name, r.query.get(name));
    }
  }
  const conditions = conditionsOf(r.headers);
  const rangeSpec = partNumber === undefined ? parseRange(r.headers['range']) : undefined;
  const acct = account(r);

  // Plain GETs take one backend round trip; a range needs the size first (HEAD, then a GET of
  // exactly the bytes), so that suffix/open ranges and 416 follow S3 whatever the backend does.
  const needHead = head || rangeSpec !== undefined;
  let res = needHead ? await env.storage.headObject(acct, bucket, key) : await env.storage.getObject(acct, bucket, key);
  if (res.status === 404) throw await objectNotFound(env, r, bucket, key);
  if (res.status < 200 || res.status >= 300) {
    destroyBody(res);
    throw unavailable(res.status);
  }
  const size = Number(res.headers['content-length'] ?? '0');
  if (hasConditions(conditions)) {
    const outcome = evaluateConditions(conditions, s3Etag(res.headers), lastModifiedMs(res.headers));
    if (!outcome.ok) {
      destroyBody(res);
      if (outcome.status === 304) {
        return { status: 304, headers: { ETag: `"${s3Etag(res.headers)}"`, 'Last-Modified': httpDate(lastModifiedMs(res.headers)) } };
      }
      throw preconditionFailed(outcome.condition);
    }
  }
  if (isManifest(res.headers)) {
    return readManifestObject(env, r, bucket, key, res, { head, ...(partNumber !== undefined ? { partNumber } : {}), ...(rangeSpec ? { rangeSpec } : {}) });
  }
  if (partNumber !== undefined && partNumber > 1) {
    destroyBody(res);
    throw new S3Error('InvalidPartNumber', 'The requested partnumber is not satisfiable', { extra: { PartNumberRequested: String(partNumber), ActualPartCount: '1' } });
  }
  const range = resolveRange(rangeSpec, size);
  if (range.kind === 'unsatisfiable') {
    throw new S3Error('InvalidRange', 'The requested range is not satisfiable', {
      extra: { RangeRequested: r.headers['range'] ?? '', ActualObjectSize: String(size) },
      headers: { 'Content-Range': `bytes */${size}` },
    });
  }
  const headers = objectResponseHeaders(res.headers, {
    checksumMode: (r.headers['x-amz-checksum-mode'] ?? '').toUpperCase() === 'ENABLED',
    whole: range.kind === 'whole',
  });
  for (const [param, header] of Object.entries(RESPONSE_OVERRIDES)) {
    const v = r.query.get(param);
    if (v !== undefined) headers[header] = v;
  }
  let status = 200;
  let length = size;
  if (range.kind === 'partial') {
    status = 206;
    length = range.end - range.start + 1;
    headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  } else if (partNumber !== undefined) {
    status = 206;
    if (size > 0) headers['Content-Range'] = `bytes 0-${size - 1}/${size}`;
    headers['x-amz-mp-parts-count'] = '1';
  }
  if (head) return { status, headers, length };

  let body: Readable;
  if (range.kind === 'partial') {
    const etag = res.headers['etag'] ?? '';
    res = await env.storage.getObject(acct, bucket, key, { Range: `bytes=${range.start}-${range.end}` });
    if (res.status === 404) throw await objectNotFound(env, r, bucket, key);
    if ((res.headers['etag'] ?? '') !== etag || (res.status !== 206 && res.status !== 200)) {
      // The object changed between HEAD and GET (or the range no longer fits): let the client retry.
      destroyBody(res);
      if (res.status === 416) throw new S3Error('InvalidRange', 'The requested range is not satisfiable');
      throw preconditionFailed('If-Match');
    }
    body = res.body as Readable;
    // ByteWindow passes on slices of the backend's chunks: those are not freed early.
    if (res.status === 200) return { status, headers, body: body.pipe(new ByteWindow(range.start, range.end)) as Readable, length };
  } else {
    body = res.body as Readable;
  }
  return { status, headers, body, length, releaseChunks: true };
}

export async function deleteObject(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  const res = await env.storage.deleteObject(account(r), bucket, key);
  if (res.status === 404) {
    // S3 deletes are idempotent: a missing key is fine, a missing bucket is not.
    const c = await env.storage.headContainer(account(r), bucket);
    if (c.status === 404) throw await missingBucket(env, r, bucket);
    if (c.status >= 300) throw unavailable(c.status);
    return { status: 204 };
  }
  if (res.status >= 300) throw unavailable(res.status);
  return { status: 204 };
}

/** `x-amz-copy-source`: `[/]bucket/key[?versionId=...]`, URL-encoded. */
export function parseCopySource(text: string): { bucket: string; key: string } {
  let source = text;
  const q = source.indexOf('?');
  if (q >= 0) {
    const params = new URLSearchParams(source.slice(q + 1));
    const v = params.get('versionId');
    if (v !== null && v !== 'null') throw s3Errors.notImplemented('Copying a specific version is not implemented (buckets are unversioned)');
    source = source.slice(0, q);
  }
  source = safeDecode(source).replace(/^\//, '');
  const slash = source.indexOf('/');
  if (slash <= 0 || slash === source.length - 1) {
    throw s3Errors.invalidArgument('Copy Source must mention the source bucket and key: sourcebucket/sourcekey', 'x-amz-copy-source', text);
  }
  return { bucket: source.slice(0, slash), key: source.slice(slash + 1) };
}

export async function copyObject(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  const src = parseCopySource(r.headers['x-amz-copy-source'] as string);
  checkKey(src.key);
  if (r.headers['x-amz-copy-source-range'] !== undefined) {
    throw s3Errors.invalidArgument('x-amz-copy-source-range is only valid for UploadPartCopy', 'x-amz-copy-source-range', r.headers['x-amz-copy-source-range']);
  }
  const directive = (r.headers['x-amz-metadata-directive'] ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw s3Errors.invalidArgument('Unknown metadata directive.', 'x-amz-metadata-directive', directive);
  }
  if (src.bucket === bucket && src.key === key && directive === 'COPY') {
    throw new S3Error('InvalidRequest', "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.");
  }
  const acct = account(r);
  let source = await env.storage.getObject(acct, src.bucket, src.key);
  if (source.status === 404) {
    const c = await env.storage.headContainer(acct, src.bucket);
    if (c.status === 404) throw await missingBucket(env, r, src.bucket);
    throw s3Errors.noSuchKey(src.key);
  }
  if (source.status < 200 || source.status >= 300) {
    destroyBody(source);
    throw unavailable(source.status);
  }
  const conditions = conditionsOf(r.headers, 'x-amz-copy-source-');
  if (hasConditions(conditions)) {
    const outcome = evaluateConditions(conditions, s3Etag(source.headers), lastModifiedMs(source.headers), { copySource: true });
    if (!outcome.ok) {
      destroyBody(source);
      throw preconditionFailed(outcome.condition);
    }
  }
  if (isManifest(source.headers)) source = await assembledSource(env, acct, src.bucket, src.key, source);
  const size = source.headers['content-length'] ?? '0';
  if (Number(size) > env.config.maxObjectSizeBytes) {
    destroyBody(source);
    throw new S3Error('InvalidRequest', 'The specified copy source is larger than the maximum allowable size for a copy source');
  }
  const meta = directive === 'COPY' ? copyableMetadata(source.headers) : backendMetadataFromRequest(r.headers);
  const headers: Record<string, string> = {
    ...meta,
    ...checksumMetadata(storedChecksum(source.headers)),
    'Content-Length': size,
  };
  if (source.headers['etag']) headers['ETag'] = source.headers['etag'];
  const res = await env.storage.putObject(acct, bucket, key, source.body as Readable, headers);
  if (res.status < 200 || res.status >= 300) {
    destroyBody(source);
    throw await writeFailed(env, r, bucket, res);
  }
  const etag = res.headers['etag'] ?? source.headers['etag'] ?? '';
  const lm = lastModifiedMs(res.headers);
  return {
    status: 200,
    headers: { 'Content-Type': 'application/xml' },
    body: xmlDocument({ CopyObjectResult: { '@xmlns': S3_XMLNS, LastModified: new Date(lm).toISOString(), ETag: `"${etag}"` } }),
  };
}
