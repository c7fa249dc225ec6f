/**
 * The S3 gateway as a koa application: request id and access log, S3 XML errors, addressing,
 * SigV4 authentication, then dispatch by method, bucket/key and subresource. Anything S3 has that
 * this gateway does not do answers NotImplemented (501), never a silent success.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import Koa from 'koa';
import { pipeReleasing, SERVER_PID_HEADER, serverPid, StoreError, type Logger } from '@swiftlet/common';
import { BucketRegistry } from './bucket-registry.js';
import {
  createBucket,
  deleteBucket,
  getBucketLocation,
  getBucketVersioning,
  headBucket,
  listBuckets,
} from './bucket-handlers.js';
import type { CredentialStore } from './credentials.js';
import { deleteObjects } from './delete-objects.js';
import type { HandlerEnv } from './handler-env.js';
import { listObjects } from './list-objects.js';
import { deleteObject, getObject, putObject } from './object-handlers.js';
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, listMultipartUploads, listParts, uploadPart, type MultipartJanitor } from './multipart/index.js';
import type { ProxyMetrics } from './metrics.js';
import type { S3Config } from './s3-config.js';
import { S3Error, s3Errors } from './s3-error.js';
import { decodeQuery, flattenHeaders, resolveAddress, splitUrl, type S3Request, type S3Response } from './s3-request.js';
import { hasAuth, verifyRequest } from './sigv4.js';
import type { S3Storage } from './storage.js';

export interface S3AppOptions {
  config: S3Config;
  storage: S3Storage;
  credentials: Pick<CredentialStore, 'lookup'>;
  logger: Logger;
  /** Clock for signature checks (tests). */
  now?: () => Date;
  /** Request counters served at `GET /metrics` (unauthenticated, like /healthcheck). */
  metrics?: ProxyMetrics;
  /** The data path's counters for /metrics. */
  backendStats?: () => Record<string, number>;
  /** Removes superseded and abandoned multipart segments (started by the server). */
  janitor?: MultipartJanitor;
}

/** Subresources S3 has that this gateway does not implement. */
const UNSUPPORTED_SUBRESOURCES = new Set([
  'accelerate', 'acl', 'analytics', 'attributes', 'cors', 'encryption', 'intelligent-tiering', 'inventory',
  'legal-hold', 'lifecycle', 'logging', 'metadataConfiguration', 'metadataTable', 'metrics', 'notification',
  'object-lock', 'ownershipControls', 'policy', 'policyStatus', 'publicAccessBlock', 'renameObject',
  'replication', 'requestPayment', 'restore', 'retention', 'select', 'select-type', 'session', 'tagging',
  'torrent', 'versions', 'website', 'abac', 'annotation',
]);

// Request ids from randomUUID (a cached entropy pool): randomBytes per request costs ~12 µs of CPU.
function newRequestId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase();
}

function newHostId(): string {
  return Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64');
}

function refuseSubresources(r: S3Request): void {
  for (const name of r.query.keys()) {
    if (UNSUPPORTED_SUBRESOURCES.has(name)) throw s3Errors.notImplemented(`The ${name} subresource is not implemented`);
  }
  const v = r.query.get('versionId');
  if (v !== undefined && v !== 'null') throw s3Errors.notImplemented('Object versions are not implemented (buckets are unversioned)');
}

async function dispatch(env: HandlerEnv, r: S3Request): Promise<S3Response> {
  refuseSubresources(r);
  const { bucket, key } = r;
  const m = r.method;
  if (bucket === undefined) {
    if (m === 'GET') return listBuckets(env, r);
    throw s3Errors.notImplemented(`${m} on the service is not implemented`);
  }
  const expectedOwner = r.headers['x-amz-expected-bucket-owner'];
  if (expectedOwner !== undefined && expectedOwner !== r.auth.credential.account) throw s3Errors.accessDenied();
  if (key === undefined) {
    if (r.query.has('uploads')) {
      if (m === 'GET') return listMultipartUploads(env, r, bucket);
      throw s3Errors.notImplemented();
    }
    if (r.query.has('location')) {
      if (m === 'GET') return getBucketLocation(env, r, bucket);
      throw s3Errors.notImplemented();
    }
    if (r.query.has('versioning')) {
      if (m === 'GET') return getBucketVersioning(env, r, bucket);
      throw s3Errors.notImplemented('Enabling versioning is not implemented');
    }
    if (r.query.has('delete')) {
      if (m === 'POST') return deleteObjects(env, r, bucket);
      throw s3Errors.notImplemented();
    }
    switch (m) {
      case 'GET':
        return listObjects(env, r, bucket);
      case 'HEAD':
        return headBucket(env, r, bucket);
      case 'PUT':
        return createBucket(env, r, bucket);
      case 'DELETE':
        return deleteBucket(env, r, bucket);
      default:
        throw s3Errors.notImplemented(`${m} on a bucket is not implemented`);
    }
  }
  if (r.query.has('uploads')) {
    if (m === 'POST') return createMultipartUpload(env, r, bucket, key);
    throw s3Errors.notImplemented();
  }
  if (r.query.has('uploadId')) {
    if (m === 'PUT') return uploadPart(env, r, bucket, key);
    if (m === 'POST') return completeMultipartUpload(env, r, bucket, key);
    if (m === 'DELETE') return abortMultipartUpload(env, r, bucket, key);
    if (m === 'GET') return listParts(env, r, bucket, key);
    throw s3Errors.notImplemented();
  }
  switch (m) {
    case 'GET':
      return getObject(env, r, bucket, key, false);
    case 'HEAD':
      return getObject(env, r, bucket, key, true);
    case 'PUT':
      return putObject(env, r, bucket, key);
    case 'DELETE':
      return deleteObject(env, r, bucket, key);
    default:
      throw s3Errors.notImplemented(`${m} on an object is not implemented`);
  }
}

/** Maps anything thrown to the S3Error the client sees (internal messages never leak). */
export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  if (err instanceof StoreError) {
    if (err.status === 404) return new S3Error('NoSuchKey', 'The specified key does not exist.', { cause: err });
    if (err.status === 499) return new S3Error('IncompleteBody', 'The request body terminated unexpectedly', { cause: err });
    if (err.status >= 500) return s3Errors.serviceUnavailable(err);
  }
  return s3Errors.internal(err);
}

export function createS3App(opts: S3AppOptions): Koa {
  const { config, storage, logger } = opts;
  const registry = new BucketRegistry(storage, config.registryAccount, logger);
  const env: HandlerEnv = { storage, registry, config, logger, ...(opts.janitor ? { janitor: opts.janitor } : {}) };
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  app.on('error', (err: Error & { headerSent?: boolean }) => {
    // Errors after the headers went out (a backend stream failing mid-body): the socket is destroyed.
    logger.warn({ err: err.message }, 'response stream failed');
  });

  app.use(async (ctx) => {
    const started = process.hrtime.bigint();
    const requestId = newRequestId();
    ctx.set('x-amz-request-id', requestId);
    ctx.set('x-amz-id-2', newHostId());
    ctx.set('Server', 'Swiftlet');
    const { rawPath, rawQuery } = splitUrl(ctx.req.url ?? '/');
    const headers = flattenHeaders(ctx.req);
    let accessKey: string | undefined;
    let r: S3Request | undefined;
    let resource = rawPath;
    ctx.res.once('close', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      opts.metrics?.observe({
        method: ctx.method,
        status: ctx.status,
        durationMs,
        bytesIn: r?.bytesIn ?? 0,
        bytesOut: ctx.method === 'HEAD' ? 0 : (ctx.response.length ?? 0),
      });
      logger.info(
        {
          method: ctx.method,
          path: rawPath,
          status: ctx.status,
          bytes: ctx.method === 'HEAD' ? 0 : (ctx.response.length ?? 0),
          ...(r?.bytesIn !== undefined ? { bytesIn: r.bytesIn } : {}),
          durationMs: Math.round(durationMs * 1000) / 1000,
          requestId,
          txId: requestId,
          ...(accessKey ? { accessKey } : {}),
          ...(ctx.res.writableFinished ? {} : { aborted: true }),
        },
        'access',
      );
    });
    try {
      if (ctx.method === 'GET' && rawPath === '/healthcheck' && !hasAuth({ method: 'GET', rawPath, rawQuery, headers })) {
        ctx.status = 200;
        ctx.set(SERVER_PID_HEADER, serverPid());
        ctx.type = 'text/plain';
        ctx.body = 'OK';
        return;
      }
      if (opts.metrics && ctx.method === 'GET' && rawPath === '/metrics' && !hasAuth({ method: 'GET', rawPath, rawQuery, headers })) {
        ctx.status = 200;
        ctx.type = 'text/plain; version=0.0.4';
        ctx.body = opts.metrics.render(opts.backendStats?.() ?? {});
        return;
      }
      const address = resolveAddress(rawPath, headers['host'], config.storageDomains);
      resource = address.bucket === undefined ? '/' : `/${address.bucket}${address.key !== undefined ? `/${address.key}` : ''}`;
      if (!hasAuth({ method: ctx.method, rawPath, rawQuery, headers })) throw s3Errors.accessDenied();
      const auth = verifyRequest(
        { method: ctx.method, rawPath, rawQuery, headers },
        { region: config.region, maxClockSkewS: config.maxClockSkewS, lookup: (k) => opts.credentials.lookup(k), ...(opts.now ? { now: opts.now() } : {}) },
      );
      accessKey = auth.credential.accessKey;
      // A client waiting for `100 Continue` sends its body only now that it is authenticated
      // (the server hands such requests here unanswered: see server.ts, checkContinue).
      if (/100-continue/i.test(headers['expect'] ?? '') && !ctx.res.headersSent) ctx.res.writeContinue();
      r = {
        requestId,
        method: ctx.method,
        rawPath,
        rawQuery,
        query: decodeQuery(rawQuery),
        headers,
        bucket: address.bucket,
        key: address.key,
        resource,
        req: ctx.req,
        auth,
      };
      const out = await dispatch(env, r);
      ctx.status = out.status;
      for (const [k, v] of Object.entries(out.headers ?? {})) ctx.set(k, v);
      if (out.body !== undefined && ctx.method !== 'HEAD') {
        const contentType = out.headers?.['Content-Type'];
        ctx.body = out.body;
        if (contentType) ctx.set('Content-Type', contentType);
        if (out.length !== undefined) ctx.length = out.length;
        if (out.releaseChunks && out.body instanceof Readable) {
          // koa's pipe, except that each chunk is freed once the socket took it (status and
          // headers are already on the response; koa still destroys the body if the client goes).
          // A body that fails mid-way cuts the connection, so the client cannot take it as whole.
          ctx.respond = false;
          const res = ctx.res;
          out.body.once('error', (err) => res.destroy(err));
          pipeReleasing(out.body, res);
        }
      } else if (out.length !== undefined) {
        ctx.length = out.length;
        if (ctx.method !== 'HEAD') ctx.body = '';
      } else if (out.status !== 204 && out.status !== 304) {
        ctx.length = 0;
        ctx.body = '';
      }
    } catch (err) {
      const e = toS3Error(err);
      if (e.status >= 500) logger.error({ err: e.cause ?? err, requestId, code: e.code }, 'request failed');
      ctx.status = e.status;
      for (const [k, v] of Object.entries(e.headers)) ctx.set(k, v);
      if (ctx.method === 'HEAD') {
        ctx.length = 0;
      } else {
        ctx.body = e.toXML(requestId, resource);
        ctx.type = 'application/xml';
      }
      // Whatever of an upload body is left unread is not worth reading: the answer is final.
      if (!ctx.req.readableEnded) ctx.set('Connection', 'close');
    }
  });
  return app;
}
