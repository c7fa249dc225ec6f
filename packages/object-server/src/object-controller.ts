/**
 * The object API: PUT, GET, HEAD, DELETE and POST on `/<device>/<partition>/<a>/<c>/<o>`.
 * Top-down: validate the request, open the object's DiskFile, decide by the stored state, write
 * or stream, then update the containers. Errors are thrown as StoreErrors and mapped to status
 * codes in one place (app.ts).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished, PassThrough, Readable } from 'node:stream';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  pipeReleasing,
  PreconditionFailedError,
  StoreError,
  type SwiftConf,
  Timestamp,
} from '@swiftlet/common';
import { BODY_CRC32_KEY, type DiskFile, type DiskFileManager, type ObjectState } from '@swiftlet/diskfile';
import type { Context } from 'koa';
import type { Logger } from 'pino';
import { asyncPendingPath } from './async-pending.js';
import { type ByteRange, evaluateConditions, parseRange } from './conditional.js';
import type { ObjectServerConfig } from './config.js';
import { containerNodesFromHeaders, updateContainers, type LocalContainerServer } from './container-update.js';
import { withContainerUpdateOverrides } from './container-update-override.js';
import { parseObjectPath, type ObjectPath } from './request-path.js';
import {
  bodyLength,
  checkMetadataLimits,
  checksumTrailer,
  deleteAt,
  expectedEtag,
  header,
  headerText,
  policyIndex,
  requireTimestamp,
  storedMetadata,
  wireText,
} from './request-headers.js';

type ObjectStateObject = ObjectState & { kind: 'object' };

/** 408: the client sent nothing for client_timeout, or the upload outlasted max_upload_time. */
export class RequestTimeoutError extends StoreError {
  constructor(message: string) {
    super(408, 'RequestTimeout', message);
  }
}

/** A request awaiting `100 Continue`: the server's checkContinue handler marks it. */
export const EXPECTS_CONTINUE = Symbol('expectsContinue');
type ContinueRequest = IncomingMessage & { [EXPECTS_CONTINUE]?: boolean };

/** Sends `100 Continue` once, if the client asked for it, right before its body is read. */
export function sendContinue(req: IncomingMessage, res: ServerResponse): void {
  const r = req as ContinueRequest;
  if (r[EXPECTS_CONTINUE]) {
    r[EXPECTS_CONTINUE] = false;
    res.writeContinue();
  }
}

/** How much of a PUT body may be read ahead of the disk writes. */
const READ_AHEAD_BYTES = 1024 * 1024;
/** The same read-ahead counted in socket chunks (up to 64 KiB each) on the diskfile's side. */
const READ_AHEAD_CHUNKS = 16;

/** An answer without a body (koa would turn a null body into 204). */
function emptyAnswer(ctx: Context, status: number): void {
  ctx.status = status;
  ctx.body = '';
  ctx.remove('Content-Type');
}

/** Metadata keys that are not returned as headers by GET/HEAD. */
const INTERNAL_KEYS = new Set(['name', 'content-length', 'etag', 'x-timestamp', 'content-type', 'content-type-timestamp', BODY_CRC32_KEY.toLowerCase()]);

export class ObjectController {
  private readonly allowedHeaders: ReadonlySet<string>;
  /** Container updates still running after their request was answered (drained on shutdown). */
  readonly lateUpdates = new Set<Promise<unknown>>();

  constructor(
    private readonly config: ObjectServerConfig,
    private readonly swiftConf: SwiftConf,
    private readonly diskfiles: DiskFileManager,
    private readonly logger: Logger,
    private readonly onAsyncPending: () => void = () => undefined,
    /** This process's container server, when it has one (container-update.ts). */
    private readonly localContainer?: LocalContainerServer,
  ) {
    this.allowedHeaders = new Set(config.allowedHeaders.map((h) => h.toLowerCase()));
  }

  async handle(ctx: Context): Promise<void> {
    switch (ctx.method) {
      case 'PUT':
        return this.put(ctx);
      case 'GET':
      case 'HEAD':
        return this.get(ctx);
      case 'DELETE':
        return this.delete(ctx);
      case 'POST':
        return this.post(ctx);
      default:
        ctx.set('Allow', 'PUT, GET, HEAD, DELETE, POST');
        throw new StoreError(405, 'MethodNotAllowed', `Method ${ctx.method} not allowed`);
    }
  }

  private async open(path: ObjectPath, policy: number): Promise<{ df: DiskFile; state: ObjectState }> {
    const df = this.diskfiles.diskFile(path.device, path.partition, policy, path.account, path.container, path.object);
    return { df, state: await df.open() };
  }

  /** X-Delete-At passed: the object reads as absent (but its timestamp still orders writes). */
  private static isExpired(state: ObjectStateObject, now: number): boolean {
    const at = state.metadata['X-Delete-At'];
    return at !== undefined && Number(at) <= now;
  }

  // ---- PUT -------------------------------------------------------------------------------

  private async put(ctx: Context): Promise<void> {
    const req = ctx.req;
    const headers = req.headers;
    const path = parseObjectPath(ctx.path);
    const timestamp = requireTimestamp(headers);
    const policy = policyIndex(headers, this.swiftConf);
    const contentLength = bodyLength(headers);
    const senderChecksums = checksumTrailer(req);
    const contentType = header(headers, 'content-type');
    if (contentType === undefined || contentType === '') throw new BadRequestError('No content type');
    checkMetadataLimits(headers);
    const expireAt = deleteAt(headers, Date.now() / 1000);

    // Every check that needs no body comes before `100 Continue` (Swift answers them first).
    // DiskFile.write repeats the device, 409 and reserve checks itself, so a plain PUT skips
    // this extra look at the disk unless a condition or a waiting client needs it.
    const df = this.diskfiles.diskFile(path.device, path.partition, policy, path.account, path.container, path.object);
    const ifNoneMatch = header(headers, 'if-none-match');
    const expectsContinue = (req as ContinueRequest)[EXPECTS_CONTINUE] === true;
    if (ifNoneMatch !== undefined || expectsContinue) {
      const state = await df.open();
      if (ifNoneMatch !== undefined && state.kind === 'object' && !ObjectController.isExpired(state, timestamp.seconds)) {
        const list = ifNoneMatch.split(',').map((s) => s.trim().replace(/^"|"$/g, ''));
        if (list.includes('*') || list.includes(state.etag)) throw new PreconditionFailedError();
      }
      if (state.kind !== 'absent' && !timestamp.isNewerThan(state.timestamp)) {
        throw new ConflictError('Conflict', { headers: { 'X-Backend-Timestamp': state.timestamp.internal } });
      }
      if (expectsContinue) await this.diskfiles.checkReserve(this.diskfiles.devicePath(path.device), contentLength ?? 0);
    }

    const metadata: Record<string, string> = {
      ...storedMetadata(headers, this.allowedHeaders),
      name: `/${path.account}/${path.container}/${path.object}`,
      'X-Timestamp': timestamp.internal,
      'Content-Type': headerText(contentType),
    };
    if (expireAt !== undefined) metadata['X-Delete-At'] = String(expireAt);

    sendContinue(req, ctx.res);
    // The body reaches the diskfile through a bounded read-ahead buffer: the socket keeps draining
    // while the diskfile waits for its disk writes (receive and write overlap), and a timeout can
    // fail the upload with 408 without tearing the connection down before the answer is sent.
    // Object mode on the reading side: the diskfile gets the socket's chunks as they came (a byte-
    // mode read() would first concatenate everything buffered: a copy of every byte).
    const body = new PassThrough({ writableHighWaterMark: READ_AHEAD_BYTES, readableObjectMode: true, readableHighWaterMark: READ_AHEAD_CHUNKS });
    // The diskfile starts reading only after its own checks; an abort before that must not be
    // an unhandled 'error' (it would end the process). The reader still sees the error.
    body.on('error', () => undefined);
    req.once('error', (err) => body.destroy(err));
    req.pipe(body);
    // Swift compares the client's ETag verbatim with the lower-case MD5 hex, so an upper-case
    // ETag can never match (422 after the body); the diskfile compares case-insensitively, so
    // such a value is handed over in a form that cannot match either.
    const wantEtag = expectedEtag(headers);
    const neverMatches = wantEtag !== undefined && /[A-F]/.test(wantEtag);
    let written: { etag: string; size: number };
    try {
      written = await this.withUploadTimeouts(req, body, () =>
        df.write(timestamp, metadata, body, {
          contentLength,
          expectedEtag: neverMatches ? `${wantEtag}-case` : wantEtag,
          // Node's HTTP parser gives each piece of the body its own Buffer, seen only on this path.
          releaseChunks: true,
          ...(senderChecksums ? { senderChecksums } : {}),
        }),
      );
    } catch (err) {
      if (neverMatches && err instanceof StoreError && err.status === 422) {
        throw new StoreError(422, 'UnprocessableEntity', `ETag ${wantEtag} does not match the body (ETags are lower-case MD5 hex)`);
      }
      throw err;
    }
    const { etag, size } = written;
    ctx.state['bytes'] = size;

    await this.containerUpdate(ctx, path, policy, df.hash, timestamp, 'PUT', withContainerUpdateOverrides({
      'X-Size': String(size),
      'X-Etag': etag,
      'X-Content-Type': contentType,
    }, headers));
    ctx.set('ETag', `"${etag}"`);
    emptyAnswer(ctx, 201);
  }

  /**
   * Bounds the body upload: client_timeout of silence or max_upload_time in all cut the request
   * (408); the diskfile then removes its temporary file.
   */
  private async withUploadTimeouts<T>(req: IncomingMessage, body: PassThrough, write: () => Promise<T>): Promise<T> {
    let timedOut: RequestTimeoutError | undefined;
    const cut = (message: string): void => {
      timedOut = new RequestTimeoutError(message);
      req.unpipe(body);
      body.destroy(timedOut);
    };
    // The socket's idle timer (no byte in either direction) is client_timeout while the body comes
    // in. The listener sits on the request: then Node's server does not destroy the socket on
    // timeout, and the 408 can still be sent. Node puts its keep-alive timer back afterwards.
    const socket = req.socket;
    const onIdle = (): void => cut(`No body data for ${this.config.clientTimeoutMs / 1000} s`);
    socket.setTimeout(this.config.clientTimeoutMs);
    req.on('timeout', onIdle);
    const whole = setTimeout(() => cut(`Upload longer than max_upload_time`), this.config.maxUploadTimeMs);
    try {
      return await write();
    } catch (err) {
      if (timedOut) throw timedOut;
      throw err;
    } finally {
      clearTimeout(whole);
      req.off('timeout', onIdle);
      socket.setTimeout(0);
    }
  }

  private async containerUpdate(
    ctx: Context,
    path: ObjectPath,
    policy: number,
    hash: string,
    timestamp: Timestamp,
    op: 'PUT' | 'DELETE',
    extra: Record<string, string>,
  ): Promise<void> {
    const nodes = containerNodesFromHeaders(ctx.req.headers, this.logger);
    if (nodes.length === 0) return;
    const devicePath = this.diskfiles.devicePath(path.device);
    const update = {
      op,
      account: path.account,
      container: path.container,
      obj: path.object,
      policyIndex: policy,
      headers: {
        'X-Timestamp': timestamp.internal,
        'X-Trans-Id': String(ctx.state['txId'] ?? ''),
        'X-Backend-Storage-Policy-Index': String(policy),
        ...extra,
      },
    };
    const pendingFile = asyncPendingPath(devicePath, policy, hash, timestamp);
    const done = updateContainers(nodes, update, pendingFile, this.config, this.logger, this.localContainer).then((r) => {
      if (r.failed > 0) this.onAsyncPending();
    });
    // Swift waits at most container_update_timeout, then answers; late failures still become
    // async pendings, and shutdown waits for them.
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      done.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), this.config.containerUpdateTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!waited) {
      this.lateUpdates.add(done);
      void done.finally(() => this.lateUpdates.delete(done));
    }
  }

  // ---- GET / HEAD -----------------------------------------------------------------------

  private notFound(state: ObjectState): NotFoundError {
    return new NotFoundError('Not Found', state.kind === 'absent' ? {} : { headers: { 'X-Backend-Timestamp': state.timestamp.internal } });
  }

  private async get(ctx: Context): Promise<void> {
    const headers = ctx.req.headers;
    const path = parseObjectPath(ctx.path);
    const policy = policyIndex(headers, this.swiftConf);
    const { df, state } = await this.open(path, policy);
    if (state.kind !== 'object' || ObjectController.isExpired(state, Date.now() / 1000)) {
      if (header(headers, 'if-match') === '*') throw new PreconditionFailedError();
      throw this.notFound(state);
    }
    const xTimestamp = state.metaTimestamp ?? state.timestamp;
    const lastModifiedS = Math.ceil(xTimestamp.seconds);
    const res = ctx.res;
    this.setObjectHeaders(ctx, state, xTimestamp, lastModifiedS);

    const verdict = evaluateConditions(headers, state.etag, lastModifiedS);
    if (verdict === 304) {
      ctx.status = 304;
      return;
    }
    if (verdict === 412) throw new PreconditionFailedError();

    const length = state.contentLength;
    const ranges = ctx.method === 'GET' ? parseRange(header(headers, 'range'), length) : undefined;
    if (ranges !== undefined && ranges.length === 0) {
      ctx.set('Content-Range', `bytes */${length}`);
      throw new StoreError(416, 'RangeNotSatisfiable', 'Requested Range Not Satisfiable');
    }
    if (ctx.method === 'HEAD') {
      ctx.status = 200;
      ctx.respond = false;
      res.setHeader('Content-Length', String(length));
      res.end();
      return;
    }
    ctx.respond = false;
    if (ranges === undefined) {
      res.statusCode = 200;
      res.setHeader('Content-Length', String(length));
      ctx.state['bytes'] = length;
      if (await this.stream(ctx, df.reader(state))) df.releaseHead(state);
    } else if (ranges.length === 1) {
      const r = ranges[0] as ByteRange;
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${r.start}-${r.end}/${length}`);
      res.setHeader('Content-Length', String(r.end - r.start + 1));
      ctx.state['bytes'] = r.end - r.start + 1;
      if (await this.stream(ctx, df.reader(state, r))) df.releaseHead(state);
    } else {
      await this.streamMultipart(ctx, df, state, ranges);
    }
  }

  private setObjectHeaders(ctx: Context, state: ObjectStateObject, xTimestamp: Timestamp, lastModifiedS: number): void {
    const res = ctx.res;
    for (const [key, value] of Object.entries(state.metadata)) {
      if (INTERNAL_KEYS.has(key.toLowerCase())) continue;
      res.setHeader(key, wireText(value));
    }
    res.setHeader('Content-Type', wireText(state.metadata['Content-Type'] ?? 'application/octet-stream'));
    res.setHeader('ETag', `"${state.etag}"`);
    res.setHeader('Last-Modified', new Date(lastModifiedS * 1000).toUTCString());
    res.setHeader('X-Timestamp', xTimestamp.normal);
    res.setHeader('X-Backend-Timestamp', xTimestamp.internal);
    res.setHeader('X-Backend-Data-Timestamp', state.timestamp.internal);
    res.setHeader('X-Backend-Durable-Timestamp', state.timestamp.internal);
    res.setHeader('Accept-Ranges', 'bytes');
  }

  /**
   * Streams a body; if the diskfile destroys the reader (bad checksum -> quarantined), the
   * response is destroyed too, so the client sees a cut connection rather than a clean end.
   * True when the whole body left the process.
   */
  private stream(ctx: Context, source: Readable): Promise<boolean> {
    // pipe() rather than stream.pipeline(): pipeline allocates an AbortController and a
    // DOMException per call, measurable on small GETs.
    const res = ctx.res;
    return new Promise((resolve) => {
      let settled = false;
      const done = (err?: Error): void => {
        if (settled) return;
        settled = true;
        if (err) {
          ctx.state['streamError'] = err.message;
          source.destroy();
          res.destroy();
          this.logger.warn({ err: err.message, path: ctx.path, txId: ctx.state['txId'] }, 'GET body stream ended early');
        }
        resolve(err === undefined);
      };
      source.on('error', (err: Error) => done(err));
      // finished() also reports a response whose connection closed before we got here (a client
      // gone while the object was being opened), which plain 'close' listeners would miss.
      finished(res, (err) => done(err ?? (res.writableFinished ? undefined : new Error('client closed the connection'))));
      if (res.destroyed) return;
      // Each read buffer is freed once the socket has taken it, not at the next garbage collection.
      pipeReleasing(source, res);
    });
  }

  private async streamMultipart(ctx: Context, df: DiskFile, state: ObjectStateObject, ranges: ByteRange[]): Promise<void> {
    const boundary = randomBytes(16).toString('hex');
    const ctype = wireText(state.metadata['Content-Type'] ?? 'application/octet-stream');
    const length = state.contentLength;
    const heads = ranges.map(
      (r, i) => `${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${ctype}\r\nContent-Range: bytes ${r.start}-${r.end}/${length}\r\n\r\n`,
    );
    const tail = `\r\n--${boundary}--`;
    let total = Buffer.byteLength(tail, 'latin1');
    ranges.forEach((r, i) => (total += Buffer.byteLength(heads[i] as string, 'latin1') + r.end - r.start + 1));
    const res = ctx.res;
    res.statusCode = 206;
    res.setHeader('Content-Type', `multipart/byteranges;boundary=${boundary}`);
    res.setHeader('Content-Length', String(total));
    ctx.state['bytes'] = total;
    async function* parts(): AsyncGenerator<Buffer> {
      for (let i = 0; i < ranges.length; i++) {
        yield Buffer.from(heads[i] as string, 'latin1');
        for await (const chunk of df.reader(state, ranges[i] as ByteRange)) yield chunk as Buffer;
      }
      yield Buffer.from(tail, 'latin1');
    }
    await this.stream(ctx, Readable.from(parts(), { objectMode: false }));
  }

  // ---- DELETE ---------------------------------------------------------------------------

  private async delete(ctx: Context): Promise<void> {
    const headers = ctx.req.headers;
    const path = parseObjectPath(ctx.path);
    const timestamp = requireTimestamp(headers);
    const policy = policyIndex(headers, this.swiftConf);
    const { df, state } = await this.open(path, policy);
    let existing: Timestamp | undefined;
    let status: number;
    if (state.kind === 'object') {
      existing = state.timestamp;
      if (ObjectController.isExpired(state, timestamp.seconds)) status = 404;
      else status = state.timestamp.compare(timestamp) < 0 ? 204 : 409;
    } else {
      existing = state.kind === 'tombstone' ? state.timestamp : undefined;
      status = 404;
    }
    const ifDeleteAt = header(headers, 'x-if-delete-at');
    if (ifDeleteAt !== undefined) {
      if (state.kind !== 'object') throw this.notFound(state);
      if (state.metadata['X-Delete-At'] !== ifDeleteAt.trim()) throw new PreconditionFailedError('X-If-Delete-At and X-Delete-At do not match');
    }
    const responseTs = existing !== undefined ? Timestamp.max(existing, timestamp) : timestamp;
    if (existing === undefined || existing.compare(timestamp) < 0) {
      await df.writeTombstone(timestamp, { name: `/${path.account}/${path.container}/${path.object}` });
      await this.containerUpdate(ctx, path, policy, df.hash, timestamp, 'DELETE', {});
    }
    ctx.status = status;
    ctx.set('X-Backend-Timestamp', responseTs.internal);
    if (status !== 204) ctx.body = status === 404 ? 'Not Found' : 'Conflict';
  }

  // ---- POST -----------------------------------------------------------------------------

  private async post(ctx: Context): Promise<void> {
    const headers = ctx.req.headers;
    const path = parseObjectPath(ctx.path);
    const timestamp = requireTimestamp(headers);
    const policy = policyIndex(headers, this.swiftConf);
    const expireAt = deleteAt(headers, Date.now() / 1000);
    const { df, state } = await this.open(path, policy);
    if (state.kind !== 'object' || ObjectController.isExpired(state, timestamp.seconds)) throw this.notFound(state);
    const current = state.metaTimestamp ?? state.timestamp;
    if (!timestamp.isNewerThan(current)) {
      throw new ConflictError('Conflict', { headers: { 'X-Backend-Timestamp': current.internal } });
    }
    // POST replaces user metadata and may set transient sysmeta and the allowed headers; the
    // persistent sysmeta written by the PUT is kept (Swift's rule).
    const meta = storedMetadata(headers, this.allowedHeaders);
    for (const key of Object.keys(meta)) {
      if (key.toLowerCase().startsWith('x-object-sysmeta-')) delete meta[key];
    }
    const metadata: Record<string, string> = {
      ...meta,
      name: `/${path.account}/${path.container}/${path.object}`,
      'X-Timestamp': timestamp.internal,
    };
    if (expireAt !== undefined) metadata['X-Delete-At'] = String(expireAt);
    await df.writeMeta(timestamp, metadata);
    emptyAnswer(ctx, 202);
  }
}
