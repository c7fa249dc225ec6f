/**
 * Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
 * AbortMultipartUpload. Parts live in the bucket's segments container `<bucket>+segments` of the
 * same account ("+" cannot occur in a bucket name, and ListBuckets hides such containers):
 *
 *   <key>/<uploadId>                 the upload: empty, carrying the final object's metadata
 *   <key>/<uploadId>/<part:05d>      each part, verified like any upload
 *
 * Complete concatenates the parts into one ordinary object (streamed part after part into a
 * single PUT), so listings, Range and replication see a plain object; the S3 multipart ETag
 * (`md5(md5s)-N`) is kept in `X-Object-Sysmeta-S3-Etag` and answered by GET/HEAD. While the parts
 * are copied the 200 answer sends whitespace, as S3 does, so clients do not time out; the final
 * document is the result or an Error. Then the parts and the upload are deleted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import pLimit from 'p-limit';
import { account, checkKey, requireBucket, unavailable, type HandlerEnv } from './handler-env.js';
import { backendMetadataFromRequest, copyableMetadata } from './object-metadata.js';
import { refuseUnsupported, storeUpload } from './object-handlers.js';
import { S3Error, s3Errors } from './s3-error.js';
import type { S3Request, S3Response } from './s3-request.js';
import { readSmallBody } from './small-body.js';
import type { ObjectRow, SubdirRow } from './storage.js';
import { parseXml, S3_XMLNS, xmlDocument } from './xml.js';

export const SEGMENTS_SUFFIX = '+segments';
/** S3's smallest part (all but the last). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PARTS = 10000;
const XML = { 'Content-Type': 'application/xml' };

export function segmentsContainer(bucket: string): string {
  return `${bucket}${SEGMENTS_SUFFIX}`;
}

function uploadObject(key: string, uploadId: string): string {
  return `${key}/${uploadId}`;
}

function partObject(key: string, uploadId: string, part: number): string {
  return `${key}/${uploadId}/${String(part).padStart(5, '0')}`;
}

function noSuchUpload(uploadId: string): S3Error {
  return new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', { extra: { UploadId: uploadId } });
}

function checkUploadId(uploadId: string): void {
  if (!/^[0-9a-f]{32}$/.test(uploadId)) throw noSuchUpload(uploadId);
}

/** The upload's metadata (the final object's), or NoSuchUpload. */
async function uploadMetadata(env: HandlerEnv, r: S3Request, bucket: string, key: string, uploadId: string): Promise<Record<string, string>> {
  checkUploadId(uploadId);
  const res = await env.storage.headObject(account(r), segmentsContainer(bucket), uploadObject(key, uploadId));
  if (res.status === 404) {
    await requireBucket(env, r, bucket);
    throw noSuchUpload(uploadId);
  }
  if (res.status < 200 || res.status >= 300) throw unavailable(res.status);
  return res.headers;
}

export async function createMultipartUpload(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  refuseUnsupported(r);
  await requireBucket(env, r, bucket);
  const acct = account(r);
  const segments = segmentsContainer(bucket);
  const head = await env.storage.headContainer(acct, segments);
  if (head.status === 404) {
    const c = await env.storage.putContainer(acct, segments);
    if (c.status < 200 || c.status >= 300) throw unavailable(c.status);
  } else if (head.status < 200 || head.status >= 300) throw unavailable(head.status);
  const uploadId = randomBytes(16).toString('hex');
  const meta = backendMetadataFromRequest(r.headers);
  const res = await env.storage.putObject(acct, segments, uploadObject(key, uploadId), Readable.from([]), { ...meta, 'Content-Length': '0' });
  if (res.status < 200 || res.status >= 300) throw unavailable(res.status);
  return {
    status: 200,
    headers: XML,
    body: xmlDocument({ InitiateMultipartUploadResult: { '@xmlns': S3_XMLNS, Bucket: bucket, Key: key, UploadId: uploadId } }),
  };
}

export async function uploadPart(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  const uploadId = r.query.get('uploadId') ?? '';
  const partText = r.query.get('partNumber') ?? '';
  if (!/^\d+$/.test(partText) || Number(partText) < 1 || Number(partText) > MAX_PARTS) {
    throw s3Errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive', 'partNumber', partText);
  }
  if (r.headers['x-amz-copy-source'] !== undefined) throw s3Errors.notImplemented('UploadPartCopy is not implemented');
  await uploadMetadata(env, r, bucket, key, uploadId);
  const stored = await storeUpload(env, r, segmentsContainer(bucket), partObject(key, uploadId, Number(partText)), { 'Content-Type': 'application/octet-stream' });
  const out: Record<string, string> = { ETag: `"${stored.etag}"` };
  if (stored.checksum) out[`x-amz-checksum-${stored.checksum.algorithm}`] = stored.checksum.value;
  return { status: 200, headers: out };
}

/** Every object name of this upload in the segments container (parts and the upload itself). */
async function uploadRows(env: HandlerEnv, r: S3Request, bucket: string, key: string, uploadId: string): Promise<ObjectRow[]> {
  const rows: ObjectRow[] = [];
  let marker: string | undefined;
  for (;;) {
    const res = await env.storage.listContainer(account(r), segmentsContainer(bucket), { prefix: `${uploadObject(key, uploadId)}/`, ...(marker ? { marker } : {}), limit: 10000 });
    if (res.status === 404) return rows;
    if (res.status < 200 || res.status >= 300) throw unavailable(res.status);
    const objs = res.rows.filter((x): x is ObjectRow => (x as SubdirRow).subdir === undefined);
    rows.push(...objs);
    if (res.rows.length < 10000 || objs.length === 0) return rows;
    marker = objs.at(-1)?.name;
  }
}

async function removeUpload(env: HandlerEnv, r: S3Request, bucket: string, key: string, uploadId: string): Promise<void> {
  const rows = await uploadRows(env, r, bucket, key, uploadId);
  const limit = pLimit(env.config.multiDeleteConcurrency);
  const segments = segmentsContainer(bucket);
  await Promise.all(rows.map((row) => limit(() => env.storage.deleteObject(account(r), segments, row.name))));
  await env.storage.deleteObject(account(r), segments, uploadObject(key, uploadId));
}

export async function abortMultipartUpload(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  const uploadId = r.query.get('uploadId') ?? '';
  await uploadMetadata(env, r, bucket, key, uploadId);
  await removeUpload(env, r, bucket, key, uploadId);
  return { status: 204 };
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
    const o = p as Record<string, unknown>;
    const n = String(o['PartNumber'] ?? '').trim();
    const e = String(o['ETag'] ?? '').trim().replace(/^"(.*)"$/, '$1').replace(/^&quot;(.*)&quot;$/, '$1');
    if (!/^\d+$/.test(n) || e === '') throw s3Errors.malformedXML();
    return { number: Number(n), etag: e };
  });
}

/** The parts as one stream, part after part, each fetched when the previous one has ended. */
function concatenatedParts(env: HandlerEnv, r: S3Request, bucket: string, key: string, uploadId: string, parts: RequestedPart[]): Readable {
  const segments = segmentsContainer(bucket);
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  void (async () => {
    for (const p of parts) {
      const res = await env.storage.getObject(account(r), segments, partObject(key, uploadId, p.number));
      if (res.status !== 200 || !res.body) throw new Error(`part ${p.number}: backend answered ${res.status}`);
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
      }
    }
    out.end();
  })().catch((err: unknown) => out.destroy(err as Error));
  return out;
}

export async function completeMultipartUpload(env: HandlerEnv, r: S3Request, bucket: string, key: string): Promise<S3Response> {
  checkKey(key);
  const uploadId = r.query.get('uploadId') ?? '';
  const meta = await uploadMetadata(env, r, bucket, key, uploadId);
  const requested = parseCompleteBody((await readSmallBody(r, 4 * 1024 * 1024)).toString('utf8'));
  for (let i = 1; i < requested.length; i++) {
    if (requested[i]!.number <= requested[i - 1]!.number) {
      throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.', { extra: { UploadId: uploadId } });
    }
  }
  const stored = new Map((await uploadRows(env, r, bucket, key, uploadId)).map((row) => [Number(row.name.slice(-5)), row]));
  let total = 0;
  const md5s: Buffer[] = [];
  requested.forEach((p, i) => {
    const row = stored.get(p.number);
    if (!row || row.hash !== p.etag) {
      throw new S3Error('InvalidPart', 'One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part\'s entity tag.', {
        extra: { UploadId: uploadId, PartNumber: String(p.number), ETag: p.etag },
      });
    }
    if (i < requested.length - 1 && row.bytes < MIN_PART_BYTES) {
      throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
        extra: { UploadId: uploadId, PartNumber: String(p.number), ProposedSize: String(row.bytes), MinSizeAllowed: String(MIN_PART_BYTES) },
      });
    }
    total += row.bytes;
    md5s.push(Buffer.from(row.hash, 'hex'));
  });
  const etag = `${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${requested.length}`;
  const headers: Record<string, string> = {
    ...copyableMetadata(meta),
    'X-Object-Sysmeta-S3-Etag': etag,
    'Content-Length': String(total),
  };

  // The answer starts now (200 + whitespace while the parts are joined), as S3's does.
  const answer = new PassThrough();
  answer.write('<?xml version="1.0" encoding="UTF-8"?>\n');
  const keepAlive = setInterval(() => answer.write(' '), 5000);
  const finish = (doc: string): void => {
    clearInterval(keepAlive);
    answer.end(doc.replace(/^<\?xml[^>]*\?>\n/, ''));
  };
  void (async () => {
    const body = concatenatedParts(env, r, bucket, key, uploadId, requested);
    const res = await env.storage.putObject(account(r), bucket, key, body, headers);
    if (res.status < 200 || res.status >= 300) {
      body.destroy();
      throw unavailable(res.status);
    }
    await removeUpload(env, r, bucket, key, uploadId).catch((err: unknown) => env.logger.warn({ err, requestId: r.requestId, uploadId }, 'completed upload: parts not all removed'));
    finish(xmlDocument({ CompleteMultipartUploadResult: { '@xmlns': S3_XMLNS, Location: `/${bucket}/${key}`, Bucket: bucket, Key: key, ETag: `"${etag}"` } }));
  })().catch((err: unknown) => {
    const e = err instanceof S3Error ? err : s3Errors.internal(err);
    env.logger.error({ err, requestId: r.requestId, uploadId }, 'CompleteMultipartUpload failed');
    finish(e.toXML(r.requestId, r.resource));
  });
  return { status: 200, headers: XML, body: answer };
}
