/**
 * Service and bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
 * GetBucketLocation, GetBucketVersioning. A bucket is a container of the caller's account; its
 * global ownership lives in the BucketRegistry.
 */
import { bucketNameProblem } from './bucket-name.js';
import { account, missingBucket, requireBucket, unavailable, type HandlerEnv } from './handler-env.js';
import { s3Timestamp } from './list-objects.js';
import { S3Error, s3Errors } from './s3-error.js';
import type { S3Request, S3Response } from './s3-request.js';
import { readSmallBody } from './small-body.js';
import type { ContainerRow, ObjectRow, SubdirRow } from './storage.js';

import { parseXml, S3_XMLNS, xmlDocument, type XmlNode } from './xml.js';

const XML = { 'Content-Type': 'application/xml' };

export async function listBuckets(env: HandlerEnv, r: S3Request): Promise<S3Response> {
  const acct = account(r);
  const prefix = r.query.get('prefix');
  const maxText = r.query.get('max-buckets');
  const max = maxText === undefined ? 10000 : Number(maxText);
  if (!Number.isInteger(max) || max < 1 || max > 10000) throw s3Errors.invalidArgument('max-buckets must be an integer between 1 and 10000', 'max-buckets', maxText);
  let marker = r.query.get('continuation-token');
  const buckets: XmlNode[] = [];
  let truncated = false;
  for (;;) {
    const res = await env.storage.listAccount(acct, { ...(prefix ? { prefix } : {}), ...(marker ? { marker } : {}), limit: Math.min(max - buckets.length + 1, 10000) });
    if (res.status === 404) break;
    if (res.status < 200 || res.status >= 300) throw unavailable(res.status);
    const rows = res.rows.filter((x): x is ContainerRow => (x as SubdirRow).subdir === undefined);
    for (const row of rows) {
      // Segments containers of multipart uploads (`<bucket>+segments`) are not buckets.
      if (row.name.includes('+')) {
        marker = row.name;
        continue;
      }
      if (buckets.length === max) {
        truncated = true;
        break;
      }
      buckets.push({ Name: row.name, CreationDate: s3Timestamp(row.last_modified), BucketRegion: env.config.region });
      marker = row.name;
    }
    if (truncated || rows.length === 0 || res.rows.length < 10000) break;
  }
  return {
    status: 200,
    headers: XML,
    body: xmlDocument({
      ListAllMyBucketsResult: {
        '@xmlns': S3_XMLNS,
        Owner: { ID: acct, DisplayName: acct },
        Buckets: { Bucket: buckets },
        ContinuationToken: truncated ? marker : undefined,
        Prefix: prefix,
      },
    }),
  };
}

function alreadyExists(bucket: string): S3Error {
  return new S3Error('BucketAlreadyExists', 'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.', { extra: { BucketName: bucket } });
}

function checkBucketName(bucket: string): void {
  const problem = bucketNameProblem(bucket);
  if (problem) throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.', { extra: { BucketName: bucket, Reason: problem } });
}

export async function createBucket(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Response> {
  checkBucketName(bucket);
  const acl = r.headers['x-amz-acl'];
  if (acl !== undefined && acl !== 'private') throw s3Errors.notImplemented(`Canned ACL ${acl} is not implemented: buckets are private to their account`);
  if (r.headers['x-amz-bucket-object-lock-enabled']?.toLowerCase() === 'true') throw s3Errors.notImplemented('Object lock is not implemented');
  const body = await readSmallBody(r, 64 * 1024);
  if (body.length > 0) {
    const doc = parseXml(body.toString('utf8'));
    const conf = doc?.['CreateBucketConfiguration'];
    if (conf === undefined || conf === null || (typeof conf !== 'object' && conf !== '')) throw s3Errors.malformedXML();
    const location = typeof conf === 'object' ? (conf as Record<string, unknown>)['LocationConstraint'] : undefined;
    if (location !== undefined && typeof location !== 'string') throw s3Errors.malformedXML();
    const loc = (location ?? '').trim();
    if (loc !== '' && loc !== env.config.region) {
      throw new S3Error('InvalidLocationConstraint', 'The specified location-constraint is not valid', { extra: { LocationConstraint: loc } });
    }
    if (loc === '' && location !== undefined && env.config.region !== 'us-east-1') {
      throw new S3Error('InvalidLocationConstraint', 'The specified location-constraint is not valid', { extra: { LocationConstraint: loc } });
    }
  }
  const acct = account(r);
  const owner = await env.registry.owner(bucket);
  if (owner !== undefined && owner !== acct) throw alreadyExists(bucket);
  if (owner === acct) {
    const head = await env.storage.headContainer(acct, bucket);
    if (head.status >= 200 && head.status < 300) {
      throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', { extra: { BucketName: bucket } });
    }
  } else {
    const won = await env.registry.claim(bucket, acct);
    if (!won) throw alreadyExists(bucket);
  }
  const res = await env.storage.putContainer(acct, bucket);
  if (res.status < 200 || res.status >= 300) throw unavailable(res.status);
  if ((await env.registry.owner(bucket)) !== acct) {
    // A simultaneous claim overtook ours (newest row wins): withdraw the new, empty container.
    const del = await env.storage.deleteContainer(acct, bucket);
    if (del.status >= 300 && del.status !== 404) env.logger.warn({ bucket, account: acct, status: del.status }, 'lost a bucket race; container not removed');
    throw alreadyExists(bucket);
  }
  return { status: 200, headers: { Location: `/${bucket}` } };
}

export async function headBucket(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Response> {
  await requireBucket(env, r, bucket);
  return { status: 200, headers: { 'x-amz-bucket-region': env.config.region } };
}

export async function deleteBucket(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Response> {
  const acct = account(r);
  const list = await env.storage.listContainer(acct, bucket, { limit: 1 });
  if (list.status === 404) throw await missingBucket(env, r, bucket);
  if (list.status < 200 || list.status >= 300) throw unavailable(list.status);
  if (list.rows.length > 0) throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty', { extra: { BucketName: bucket } });
  const res = await env.storage.deleteContainer(acct, bucket);
  if (res.status === 409) throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty', { extra: { BucketName: bucket } });
  if (res.status === 404) throw s3Errors.noSuchBucket(bucket);
  if (res.status < 200 || res.status >= 300) throw unavailable(res.status);
  await env.registry.release(bucket, acct);
  await removeSegments(env, acct, bucket).catch((err: unknown) => env.logger.warn({ err, bucket, requestId: r.requestId }, 'bucket deleted; its multipart segments container was not'));
  return { status: 204 };
}

export async function getBucketLocation(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Response> {
  await requireBucket(env, r, bucket);
  // us-east-1 is the empty constraint, as S3 answers it.
  const region = env.config.region === 'us-east-1' ? '' : env.config.region;
  return { status: 200, headers: XML, body: xmlDocument({ LocationConstraint: { '@xmlns': S3_XMLNS, '#text': region } }) };
}

export async function getBucketVersioning(env: HandlerEnv, r: S3Request, bucket: string): Promise<S3Response> {
  await requireBucket(env, r, bucket);
  // Versioning has never been enabled on any bucket: S3 answers an empty configuration.
  return { status: 200, headers: XML, body: xmlDocument({ VersioningConfiguration: { '@xmlns': S3_XMLNS } }) };
}

/** Drops a deleted bucket's unfinished multipart uploads and their segments container. */
async function removeSegments(env: HandlerEnv, acct: string, bucket: string): Promise<void> {
  // The multipart segments container of the bucket (multipart/names.ts).
  const segments = `${bucket}+segments`;
  for (;;) {
    const list = await env.storage.listContainer(acct, segments, { limit: 1000 });
    if (list.status === 404) return;
    if (list.status < 200 || list.status >= 300) throw unavailable(list.status);
    const names = list.rows.filter((x): x is ObjectRow => (x as SubdirRow).subdir === undefined).map((x) => x.name);
    if (names.length === 0) break;
    for (const name of names) await env.storage.deleteObject(acct, segments, name);
  }
  await env.storage.deleteContainer(acct, segments);
}
