/**
 * Reads (GET/HEAD of objects, containers, accounts): nodes one at a time in NodeIter order until
 * the ReadResolver accepts an answer. An object body is handed to the client through a stream that
 * resumes from another replica at the byte reached if the serving node fails mid-body, and is
 * destroyed (never ended short) when no replica can continue.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Timestamp } from '@swiftlet/common';
import { discard, flatHeaders } from './backend-call.js';
import type { BackendContext } from './context.js';
import { answerHeaders, parseContentRange, unquoteEtag } from './headers.js';
import type { NodeIter, PlacedNode } from './node-iter.js';
import { ReadResolver, answerTimestamp } from './read-resolver.js';

export interface ReadResult {
  status: number;
  headers: Record<string, string>;
  /** The chosen answer (its body unread), when a node gave a usable one. */
  res?: IncomingMessage;
  node?: PlacedNode;
}

/**
 * Asks the nodes in turn. `pathOf(node)` gives the backend path (device and partition first).
 * A usable answer is returned with its body unread; the caller must consume or discard it.
 */
export async function readFromNodes(
  ctx: BackendContext,
  what: string,
  iter: NodeIter<PlacedNode>,
  replicas: number,
  method: 'GET' | 'HEAD',
  pathOf: (node: PlacedNode) => string,
  headers: OutgoingHttpHeaders,
): Promise<ReadResult> {
  const resolver = new ReadResolver(replicas);
  for (const { node, primary } of iter) {
    const call = ctx.open(node, method, pathOf(node), headers);
    let res: IncomingMessage;
    try {
      res = await call.response;
    } catch (err) {
      ctx.noteError(node, err, what);
      resolver.offer({ status: 503, primary });
      continue;
    }
    ctx.timings.record(node, call.elapsedMs() / 1000);
    const status = res.statusCode ?? 503;
    ctx.noteStatus(node, status, what);
    const h = flatHeaders(res);
    const decision = resolver.offer({ status, primary, timestamp: answerTimestamp(h), headers: h });
    if (decision === 'use') {
      if (!primary) ctx.metrics.handoffReads++;
      return { status, headers: answerHeaders(h), res, node };
    }
    discard(res);
  }
  const final = resolver.final();
  return { status: final.status, headers: answerHeaders(final.headers) };
}

/**
 * The body of an object GET, resumable: tracks the bytes passed on and, if the node fails before
 * the expected length, asks the next nodes for the rest (`Range` from the offset reached, `If-Match`
 * on the ETag, same X-Backend-Timestamp), continuing seamlessly; otherwise destroys itself.
 */
export class ResumingBody extends Readable {
  private current: IncomingMessage | undefined;
  private offset = 0;
  private finished = false;
  private resuming = false;

  constructor(
    private readonly ctx: BackendContext,
    first: IncomingMessage,
    private readonly iter: NodeIter<PlacedNode>,
    private readonly pathOf: (node: PlacedNode) => string,
    private readonly baseHeaders: OutgoingHttpHeaders,
    /** Inclusive byte range of the object this body carries. */
    private readonly range: { start: number; end: number },
    private readonly etag: string,
    private readonly timestamp: Timestamp | undefined,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.attach(first);
  }

  private get expected(): number {
    return this.range.end - this.range.start + 1;
  }

  private attach(res: IncomingMessage): void {
    this.current = res;
    let ended = false;
    res.on('data', (chunk: Buffer) => {
      if (this.finished) return;
      let c = chunk;
      if (this.offset + c.length > this.expected) c = c.subarray(0, this.expected - this.offset);
      this.offset += c.length;
      if (!this.push(c)) res.pause();
    });
    res.once('end', () => {
      ended = true;
      if (this.finished) return;
      if (this.offset >= this.expected) {
        this.finished = true;
        this.push(null);
      } else {
        void this.resume_('ended short');
      }
    });
    res.once('close', () => {
      if (!ended && !this.finished && this.current === res) void this.resume_('connection lost');
    });
    res.on('error', () => {
      // 'close' follows and handles it; the error itself is logged by resume_.
    });
  }

  override _read(): void {
    this.current?.resume();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.finished = true;
    this.current?.destroy();
    cb(err);
  }

  private async resume_(why: string): Promise<void> {
    if (this.resuming || this.finished) return;
    this.resuming = true;
    const failed = this.current;
    this.current = undefined;
    failed?.destroy();
    this.ctx.logger.warn({ offset: this.offset, expected: this.expected, why }, 'object read failed mid-body; resuming from another replica');
    const from = this.range.start + this.offset;
    const headers: OutgoingHttpHeaders = { ...this.baseHeaders, range: `bytes=${from}-${this.range.end}`, 'if-match': `"${this.etag}"` };
    delete headers['if-none-match'];
    delete headers['if-modified-since'];
    delete headers['if-unmodified-since'];
    for (const { node } of this.iter) {
      if (this.finished) return;
      const call = this.ctx.open(node, 'GET', this.pathOf(node), headers);
      let res: IncomingMessage;
      try {
        res = await call.response;
      } catch (err) {
        this.ctx.noteError(node, err, 'Object');
        continue;
      }
      const status = res.statusCode ?? 503;
      this.ctx.noteStatus(node, status, 'Object');
      const h = flatHeaders(res);
      const cr = parseContentRange(h['content-range']);
      const ts = answerTimestamp(h);
      const sameVersion =
        unquoteEtag(h['etag'] ?? '') === this.etag && (!this.timestamp || !ts || ts.equals(this.timestamp));
      if (status === 206 && cr && cr.start === from && cr.end === this.range.end && sameVersion) {
        if (this.finished) {
          res.destroy();
          return;
        }
        this.ctx.metrics.readResumes++;
        this.resuming = false;
        this.attach(res);
        return;
      }
      discard(res);
    }
    this.ctx.metrics.readAborts++;
    this.ctx.logger.error({ offset: this.offset, expected: this.expected }, 'object read failed mid-body and no replica could continue it');
    this.finished = true;
    this.destroy(new Error(`object body cut after ${this.offset} of ${this.expected} bytes; no replica could continue`));
  }
}

/** The byte range a 200/206 answer carries, when it is one contiguous range of known length. */
export function servedRange(status: number, headers: Record<string, string>): { start: number; end: number } | undefined {
  if (status === 200) {
    const len = Number(headers['content-length']);
    if (!Number.isSafeInteger(len) || len < 0) return undefined;
    return { start: 0, end: len - 1 };
  }
  if (status === 206) {
    const cr = parseContentRange(headers['content-range']);
    return cr ? { start: cr.start, end: cr.end } : undefined;
  }
  return undefined;
}
