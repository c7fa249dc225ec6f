/**
 * DeleteObjects (POST /bucket?delete): up to max_multi_delete_objects keys in one XML document,
 * integrity-checked by Content-MD5 or an x-amz-checksum-* header as S3 requires, quiet mode
 * reporting only failures. Deletes run with bounded concurrency.
 */
import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import { checksumFromHeaders, checksumMismatch, createChecksum } from './checksums.js';
import { account, MAX_KEY_BYTES, requireBucket, type HandlerEnv } from './handler-env.js';
import { readSmallBody } from './small-body.js';
import { S3Error, s3Errors } from './s3-error.js';
import type { S3Request, S3Response } from './s3-request.js';
import { parseXml, S3_XMLNS, xmlDocument, type XmlNode } from './xml.js';

const MAX_DELETE_BODY_BYTES = 2 * 1024 * 1024;

export async function deleteObjects(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Response> {
  const md5 = r.headers['content-md5'];
  const checksum = checksumFromHeaders(r.headers);
  const body = await readSmallBody(r, MAX_DELETE_BODY_BYTES);
  if (md5 === undefined && checksum === undefined) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-MD5 or x-amz-checksum-*');
  }
  if (md5 !== undefined && createHash('md5').update(body).digest('base64') !== md5.trim()) {
    throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
  if (checksum) {
    const h = createChecksum(checksum.algorithm);
    h.update(body);
    if ((await h.digest()) !== checksum.value) throw checksumMismatch(checksum.algorithm);
  }
  const doc = parseXml(body.toString('utf8'));
  const del = doc?.['Delete'];
  if (!del || typeof del !== 'object') throw s3Errors.malformedXML();
  const d = del as Record<string, unknown>;
  const objects = (d['Object'] ?? []) as unknown[];
  if (!Array.isArray(objects) || objects.length === 0) throw s3Errors.malformedXML();
  if (objects.length > env.config.maxMultiDeleteObjects) throw s3Errors.malformedXML();
  const quiet = String(d['Quiet'] ?? 'false').trim().toLowerCase() === 'true';
  const keys: string[] = [];
  for (const o of objects) {
    const k = (o as Record<string, unknown> | undefined)?.['Key'];
    if (typeof k !== 'string') throw s3Errors.malformedXML();
    keys.push(k);
  }
  await requireBucket(env, r, bucket);

  const limit = pLimit(env.config.multiDeleteConcurrency);
  const results = await Promise.all(
    keys.map((key) =>
      limit(async (): Promise<XmlNode> => {
        if (Buffer.byteLength(key) > MAX_KEY_BYTES) return { Error: { Key: key, Code: 'KeyTooLongError', Message: 'Your key is too long' } };
        if (key === '') return { Error: { Key: key, Code: 'InvalidArgument', Message: 'Key must not be empty' } };
        try {
          const res = await env.storage.deleteObject(account(r), bucket, key);
          if ((res.status >= 200 && res.status < 300) || res.status === 404) return { Deleted: { Key: key } };
          return { Error: { Key: key, Code: 'ServiceUnavailable', Message: 'Please reduce your request rate.' } };
        } catch (err) {
          env.logger.error({ err, bucket, key, requestId: r.requestId }, 'multi-delete: delete failed');
          return { Error: { Key: key, Code: 'InternalError', Message: 'We encountered an internal error. Please try again.' } };
        }
      }),
    ),
  );
  const deleted = results.filter((x) => x['Deleted'] !== undefined).map((x) => x['Deleted'] as XmlNode);
  const errors = results.filter((x) => x['Error'] !== undefined).map((x) => x['Error'] as XmlNode);
  return {
    status: 200,
    headers: { 'Content-Type': 'application/xml' },
    body: xmlDocument({ DeleteResult: { '@xmlns': S3_XMLNS, Deleted: quiet ? [] : deleted, Error: errors } }),
  };
}
