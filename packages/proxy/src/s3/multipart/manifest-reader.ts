/**
 * Reading a multipart object: GET/HEAD (whole, Range, partNumber) answered from the manifest, the
 * body streamed part after part. Only the parts a range touches are fetched, the first and last
 * with a backend Range. One part is read at a time (the next one's GET is asked for while it
 * streams) and a part's body is paused while the client is slower, so memory stays flat
 * whatever the size. A
 * part that is missing everywhere, short, or not the one the manifest names fails the stream,
 * and the client connection is cut: never a short body that looks complete.
 */
import { Readable } from 'node:stream';
import type { Logger } from '@swiftlet/common';
import { unavailable, type HandlerEnv } from '../handler-env.js';
import { objectResponseHeaders, RESPONSE_OVERRIDES } from '../object-metadata.js';
import { resolveRange, type RangeSpec } from '../range.js';
import { S3Error } from '../s3-error.js';
import type { S3Request, S3Response } from '../s3-request.js';
import type { BackendResponse, S3Storage } from '../storage.js';
import { isManifest, manifestPartCount, manifestSize, parseManifest, type Manifest } from './manifest.js';

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

async function readAll(body: NodeJS.ReadableStream | undefined, max: number): Promise<string> {
  if (!body) throw new Error('manifest without a body');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) throw new Error('manifest too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The manifest of an object answer (GET with body), or a fresh GET of it. */
export async function loadManifest(storage: S3Storage, account: string, bucket: string, key: string, res: BackendResponse): Promise<{ manifest: Manifest; headers: Record<string, string> }> {
  let answer = res;
  if (!answer.body) {
    answer = await storage.getObject(account, bucket, key);
    if (answer.status === 404) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { extra: { Key: key } });
    if (answer.status < 200 || answer.status >= 300) throw unavailable(answer.status);
    if (!isManifest(answer.headers)) throw new S3Error('PreconditionFailed', 'The object changed while it was read; retry', { extra: { Condition: 'If-Match' } });
  }
  return { manifest: parseManifest(await readAll(answer.body, MAX_MANIFEST_BYTES)), headers: answer.headers };
}

interface PartWindow {
  part: Manifest['parts'][number];
  /** First and last byte wanted of the part (inclusive). */
  from: number;
  to: number;
}

/**
 * The parts' windows as one byte stream. Each part's backend body is passed on chunk by chunk
 * (paused when the client is slower, resumed by _read), the next part's GET is already asked for
 * while this one streams, and a part that fails, is short, or is not the one the manifest names
 * destroys the stream. Hand-written rather than `for await` over the bodies in an async generator:
 * a paused-mode read() joins the chunks buffered meanwhile into a new Buffer and every chunk costs
 * promises (warm multipart downloads in one cluster: 283-412 MiB/s that way, 472-517 MiB/s this
 * way; bench/RESULTS.md, Multipart).
 */
class PartsStream extends Readable {
  private index = 0;
  private body: Readable | undefined;
  private opening = false;
  private next: Promise<BackendResponse> | undefined;
  /** Bytes of the current body still to drop (a backend that ignored the Range) and to pass on. */
  private skip = 0;
  private want = 0;
  /** The current body holds bytes past the window. */
  private overshoot = false;

  constructor(
    private readonly windows: PartWindow[],
    private readonly request: (w: PartWindow) => Promise<BackendResponse>,
    private readonly uploadId: string,
  ) {
    // Up to 1 MiB read ahead of the client: bounded, and few wake-ups per chunk.
    super({ highWaterMark: 1024 * 1024 });
    if (windows.length > 0) this.next = this.ask(0);
  }

  private ask(i: number): Promise<BackendResponse> {
    const p = this.request(this.windows[i] as PartWindow);
    p.catch(() => undefined); // awaited (and its error reported) when its turn comes
    return p;
  }

  override _read(): void {
    if (this.body) this.body.resume();
    else if (!this.opening) void this.openPart();
  }

  private async openPart(): Promise<void> {
    if (this.index >= this.windows.length) {
      this.push(null);
      return;
    }
    this.opening = true;
    const { part, from, to } = this.windows[this.index] as PartWindow;
    let res: BackendResponse;
    try {
      res = await (this.next as Promise<BackendResponse>);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    } finally {
      this.opening = false;
    }
    if (this.destroyed) {
      (res.body as Readable | undefined)?.destroy?.();
      return;
    }
    this.next = this.index + 1 < this.windows.length ? this.ask(this.index + 1) : undefined;
    if ((res.status !== 200 && res.status !== 206) || !res.body) {
      this.destroy(new Error(`segment ${part.name} of upload ${this.uploadId}: backend answered ${res.status}`));
      return;
    }
    const body = res.body as Readable;
    if ((res.headers['etag'] ?? '') !== part.etag) {
      body.destroy();
      this.destroy(new Error(`segment ${part.name}: ETag ${res.headers['etag']} is not the manifest's ${part.etag}`));
      return;
    }
    // A backend that ignored the Range sends the whole part: cut the window here.
    this.skip = res.status === 200 ? from : 0;
    this.want = to - from + 1;
    this.overshoot = res.status === 200 && to < part.bytes - 1;
    this.body = body;
    body.on('data', this.onData);
    body.once('end', this.onEnd);
    body.once('error', this.onError);
    body.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    let c = chunk;
    if (this.skip > 0) {
      if (c.length <= this.skip) {
        this.skip -= c.length;
        return;
      }
      c = c.subarray(this.skip);
      this.skip = 0;
    }
    if (c.length > this.want) c = c.subarray(0, this.want);
    this.want -= c.length;
    const more = this.push(c);
    if (this.want === 0) {
      const body = this.body as Readable;
      this.release(body);
      if (!body.readableEnded) {
        if (this.overshoot) {
          // A backend that ignored the Range: the rest of the part is not wanted.
          body.destroy();
        } else {
          // Only its end is still to come: let it come, so the backend connection is reused.
          body.on('error', () => undefined);
          body.resume();
        }
      }
      this.index++;
      if (more) void this.openPart();
      return;
    }
    if (!more) this.body?.pause();
  };

  private readonly onEnd = (): void => {
    if (this.want > 0) {
      const { part } = this.windows[this.index] as PartWindow;
      this.destroy(new Error(`segment ${part.name}: ${this.want} bytes short`));
    }
  };

  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };

  private release(body: Readable): void {
    body.off('data', this.onData);
    body.off('end', this.onEnd);
    body.off('error', this.onError);
    this.body = undefined;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const body = this.body;
    if (body) {
      this.release(body);
      body.destroy();
    }
    // Stopped early (client gone, a failed part): the part asked for ahead is not wanted.
    this.next?.then((r) => (r.body as Readable | undefined)?.destroy?.(), () => undefined);
    this.next = undefined;
    cb(err);
  }
}

/**
 * The bytes [start, end] of a manifest's parts as one stream. `onFail` runs once if a part cannot
 * be read (the caller cuts the connection).
 */
export function manifestStream(storage: S3Storage, account: string, manifest: Manifest, start: number, end: number, logger: Logger, onFail?: (err: Error) => void): Readable {
  // The windows of the parts the range touches, in order.
  const windows: PartWindow[] = [];
  let offset = 0;
  for (const part of manifest.parts) {
    const partStart = offset;
    const partEnd = offset + part.bytes - 1;
    offset += part.bytes;
    if (partEnd < start || part.bytes === 0) continue;
    if (partStart > end) break;
    windows.push({ part, from: Math.max(start, partStart) - partStart, to: Math.min(end, partEnd) - partStart });
  }
  const request = (w: PartWindow): Promise<BackendResponse> =>
    storage.getObject(account, manifest.container, w.part.name, w.from === 0 && w.to === w.part.bytes - 1 ? {} : { Range: `bytes=${w.from}-${w.to}` });
  const out = new PartsStream(windows, request, manifest.uploadId);
  out.once('error', (err: Error) => {
    logger.error({ err: err.message, uploadId: manifest.uploadId }, 'multipart object read failed');
    onFail?.(err);
  });
  return out;
}

/** Byte offsets of part `n` (1-based index into the manifest's parts). */
function partWindow(manifest: Manifest, index: number): { start: number; end: number } {
  let start = 0;
  for (let i = 0; i < index - 1; i++) start += manifest.parts[i]!.bytes;
  return { start, end: start + manifest.parts[index - 1]!.bytes - 1 };
}

/**
 * GetObject / HeadObject of a manifest object; `res` is the backend answer already checked
 * (status and conditions) by the object handler.
 */
export async function readManifestObject(
  env: HandlerEnv,
  r: S3Request,
  bucket: string,
  key: string,
  res: BackendResponse,
  opts: { head: boolean; partNumber?: number; rangeSpec?: RangeSpec },
): Promise<S3Response> {
  const account = r.auth.credential.account;
  let backend = res.headers;
  let manifest: Manifest | undefined;
  const needManifest = !opts.head || opts.partNumber !== undefined;
  if (needManifest) {
    const loaded = await loadManifest(env.storage, account, bucket, key, res);
    manifest = loaded.manifest;
    backend = loaded.headers;
  }
  const size = manifestSize(backend);
  const count = manifestPartCount(backend);
  let range = resolveRange(opts.rangeSpec, size);
  if (opts.partNumber !== undefined) {
    if (opts.partNumber > count || !manifest) {
      throw new S3Error('InvalidPartNumber', 'The requested partnumber is not satisfiable', {
        extra: { PartNumberRequested: String(opts.partNumber), ActualPartCount: String(count) },
      });
    }
    const w = partWindow(manifest, opts.partNumber);
    range = w.end >= w.start ? { kind: 'partial', ...w } : { kind: 'whole' };
  }
  if (range.kind === 'unsatisfiable') {
    throw new S3Error('InvalidRange', 'The requested range is not satisfiable', {
      extra: { RangeRequested: r.headers['range'] ?? '', ActualObjectSize: String(size) },
      headers: { 'Content-Range': `bytes */${size}` },
    });
  }
  const headers = objectResponseHeaders(backend, { checksumMode: false, whole: range.kind === 'whole' });
  for (const [param, header] of Object.entries(RESPONSE_OVERRIDES)) {
    const v = r.query.get(param);
    if (v !== undefined) headers[header] = v;
  }
  let status = 200;
  let start = 0;
  let end = size - 1;
  if (range.kind === 'partial') {
    status = 206;
    start = range.start;
    end = range.end;
    headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  }
  if (opts.partNumber !== undefined) {
    status = 206;
    headers['x-amz-mp-parts-count'] = String(count);
  }
  const length = end - start + 1;
  if (opts.head || length <= 0 || !manifest) return { status, headers, length: Math.max(length, 0) };
  // Headers are out once the first byte is: a failure after that can only cut the connection.
  const body = manifestStream(env.storage, account, manifest, start, end, env.logger, () => r.req.socket?.destroy());
  return { status, headers, body, length };
}

/**
 * A backend-like answer whose body is the assembled object (CopyObject/UploadPartCopy of a
 * multipart source): the manifest's headers with the whole length, without the manifest ETag.
 */
export async function assembledSource(env: HandlerEnv, account: string, bucket: string, key: string, res: BackendResponse, range?: { start: number; end: number }): Promise<BackendResponse> {
  const { manifest, headers } = await loadManifest(env.storage, account, bucket, key, res);
  const size = manifestSize(headers);
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k !== 'etag' && !k.startsWith('x-object-sysmeta-s3-mpu-') && k !== 'x-object-sysmeta-s3-etag' && !k.startsWith('x-object-sysmeta-container-update-override-')) out[k] = v;
  }
  out['content-length'] = String(Math.max(end - start + 1, 0));
  const body = end >= start ? manifestStream(env.storage, account, manifest, start, end, env.logger) : Readable.from([]);
  return { status: range ? 206 : 200, headers: out, body };
}
