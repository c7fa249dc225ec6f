/**
 * Reads (GET/HEAD of objects, containers, accounts): nodes one at a time in NodeIter order until
 * the ReadResolver accepts an answer. An object body is handed to the client through a stream that
 * resumes from another replica at the byte reached if the serving node fails mid-body, and is
 * destroyed (never ended short) when no replica can continue.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { Timestamp } from '@swiftlet/common';
import { discard, flatHeaders, type BackendCall } from './backend-call.js';
import type { BackendContext } from './context.js';
import { answerHeaders, parseContentRange, unquoteEtag } from './headers.js';
import type { NodeIter, PlacedNode, VisitedNode } from './node-iter.js';
import { ReadResolver, answerTimestamp, isGoodReadStatus, type ReadAnswer } from './read-resolver.js';

export interface ReadResult {
  status: number;
  headers: Record<string, string>;
  /** The chosen answer (its body unread), when a node gave a usable one. */
  res?: IncomingMessage;
  node?: PlacedNode;
  /** The nodes after the chosen one, not yet asked for a body: where a broken read resumes. */
  rest: Iterable<VisitedNode<PlacedNode>>;
}

/** The conditional and Range headers: a probe asks which version a node holds, unconditionally. */
const CONDITIONAL_HEADERS = ['range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'];

/**
 * Asks the nodes in turn. `pathOf(node)` gives the backend path (device and partition first).
 * A usable answer is returned with its body unread; the caller must consume or discard it.
 *
 * With `readQuorum` > 1 (object reads; see `consistent_reads`), the answer is served only once
 * that many primaries answered and none holds a newer version or a newer tombstone: the other
 * primaries are asked with HEAD while the first is asked for the body, so a read costs one more
 * small request but no more waiting. With a write quorum W of N replicas and a read quorum of
 * N - W + 1, the two meet on a node that took the last acknowledged write, so a read follows every
 * acknowledged PUT and DELETE (S3's read-after-write consistency). Swift uses the first good
 * answer: a primary that was down during a DELETE serves the old object until replication reaches
 * it. Limits: a write acknowledged by handoffs standing in for primaries that were down is not
 * among the primaries asked here until replication moves it (it is found only if the primaries
 * fail and the walk reaches the handoffs); and when too few primaries can answer, the read is
 * served anyway (as Swift would): availability first.
 */
export async function readFromNodes(
  ctx: BackendContext,
  what: string,
  iter: NodeIter<PlacedNode>,
  replicas: number,
  method: 'GET' | 'HEAD',
  pathOf: (node: PlacedNode) => string,
  headers: OutgoingHttpHeaders,
  readQuorum = 1,
): Promise<ReadResult> {
  const resolver = new ReadResolver(replicas);
  const nodes = new Lookahead(iter);
  const probes = new Map<number, Promise<ReadAnswer>>();
  const probeHeaders: OutgoingHttpHeaders = { ...headers };
  for (const k of CONDITIONAL_HEADERS) delete probeHeaders[k];
  /** Primaries (by position) whose answer says what they hold (not an error). */
  const answered = new Set<number>();
  const asked = new Set<number>();
  const offered = new Set<number>();

  /** Probe answers as they arrive, by position. */
  const settled = new Map<number, ReadAnswer>();
  const probe = (i: number, { node, primary }: VisitedNode<PlacedNode>): void => {
    probes.set(
      i,
      headNode(ctx, what, node, primary, pathOf(node), probeHeaders).then((a) => {
        settled.set(i, a);
        return a;
      }),
    );
  };
  /** Probes up to `count` more primaries not yet asked, from position `from`; how many it started. */
  const probeMore = (count: number, from = 0): number => {
    let started = 0;
    for (let i = from; started < count; i++) {
      const entry = nodes.at(i);
      if (!entry?.primary) break;
      if (asked.has(i) || probes.has(i)) continue;
      probe(i, entry);
      started++;
    }
    return started;
  };
  const offerOnce = (i: number, a: ReadAnswer): ReturnType<ReadResolver['offer']> => {
    offered.add(i);
    if (a.primary && a.status < 500) answered.add(i);
    return resolver.offer(a);
  };
  /**
   * Waits until `readQuorum` primaries answered (any two of them meet the last write), asking
   * more primaries when a probe fails, or when it is slower than conn_timeout (a hung node must
   * not hold every read for the node timeout: Swift's concurrency_timeout does the same for
   * its concurrent GETs). True when a node holds something newer than `candidate` (it is stale).
   */
  const isStale = async (candidate: Timestamp | undefined): Promise<boolean> => {
    let hedgeAt = Date.now() + ctx.connTimeoutMs;
    for (;;) {
      for (const [i, a] of settled) {
        if (a.primary && a.status < 500) answered.add(i);
        if (isGoodReadStatus(a.status) && a.timestamp) resolver.sawVersion(a.timestamp);
        else if (a.status === 404 && a.timestamp && !offered.has(i)) offerOnce(i, a);
      }
      // An answer without a timestamp (412 for If-Match: * where the object is missing) is
      // stale as soon as another primary holds a version.
      if (candidate ? resolver.isOlderThanSeen(candidate) : resolver.hasSeenVersion()) return true;
      if (answered.size >= readQuorum) return false;
      const pending = [...probes].filter(([i]) => !settled.has(i)).map(([, p]) => p);
      if (pending.length === 0 || Date.now() >= hedgeAt) {
        hedgeAt = Date.now() + ctx.connTimeoutMs;
        if (probeMore(readQuorum - answered.size) === 0 && pending.length === 0) return false;
        continue;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([...pending, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, hedgeAt - Date.now()))))]);
      clearTimeout(timer);
    }
  };
  const done = (i: number): boolean => asked.has(i) || offered.has(i);
  /**
   * The next node to ask for the body: one a probe found holding the newest version seen, if
   * any (after a stale answer, the node known to hold the newer version, not one whose probe
   * may still hang); else the first one in NodeIter order not yet done.
   */
  const nextPosition = (): number | undefined => {
    let best: number | undefined;
    let bestTs: Timestamp | undefined;
    for (const [j, a] of settled) {
      if (done(j) || !isGoodReadStatus(a.status) || !a.timestamp || resolver.isOlderThanSeen(a.timestamp)) continue;
      if (!bestTs || a.timestamp.isNewerThan(bestTs)) [best, bestTs] = [j, a.timestamp];
    }
    if (best !== undefined) return best;
    for (let i = 0; ; i++) {
      if (!nodes.at(i)) return undefined;
      if (!done(i)) return i;
    }
  };

  // The first node is asked for the body; the probes go to the ones after it.
  if (readQuorum > 1) probeMore(readQuorum - 1, 1);
  for (let i = nextPosition(); i !== undefined; i = nextPosition()) {
    const { node, primary } = nodes.at(i) as VisitedNode<PlacedNode>;
    const probed = probes.get(i);
    if (probed) {
      // A node that told its probe it has no usable version is not asked again.
      const a = await probed;
      if (!isGoodReadStatus(a.status)) {
        offerOnce(i, a);
        continue;
      }
    }
    asked.add(i);
    const { call, res, answer } = await askNode(ctx, what, node, primary, method, pathOf(node), headers);
    const decision = offerOnce(i, answer);
    if (!res) continue;
    const { status, timestamp } = answer;
    const h = answer.headers ?? {};
    if (decision === 'use') {
      if (readQuorum > 1) {
        // The body waits unread while the other primaries answer: that is us, not a slow node.
        call.holdTimeout();
        const stale = await isStale(timestamp);
        call.armTimeout();
        if (stale) {
          ctx.metrics.staleReadsAvoided++;
          // Not read to its end: a stale copy of a large object would keep the node busy for long.
          if (method === 'GET') res.destroy();
          else discard(res);
          continue;
        }
        if (res.destroyed || res.errored) {
          ctx.logger.warn({ node: `${node.ip}:${node.port}/${node.device}` }, 'object read lost its answer while the other primaries were asked');
          continue;
        }
      }
      if (!primary) ctx.metrics.handoffReads++;
      return { status, headers: answerHeaders(h), res, node, rest: nodes.except(done) };
    }
    discard(res);
  }
  const final = resolver.final();
  return { status: final.status, headers: answerHeaders(final.headers), rest: [] };
}

/**
 * One request to one node, with its bookkeeping (errors, timings, status). Never throws: a
 * failed call is a 503 answer without `res`. The body of `res` is left unread.
 */
async function askNode(
  ctx: BackendContext,
  what: string,
  node: PlacedNode,
  primary: boolean,
  method: 'GET' | 'HEAD',
  path: string,
  headers: OutgoingHttpHeaders,
): Promise<{ call: BackendCall; res?: IncomingMessage; answer: ReadAnswer }> {
  const call = ctx.open(node, method, path, headers);
  let res: IncomingMessage;
  try {
    res = await call.response;
  } catch (err) {
    ctx.noteError(node, err, what);
    return { call, answer: { status: 503, primary } };
  }
  ctx.timings.record(node, call.elapsedMs() / 1000);
  const status = res.statusCode ?? 503;
  ctx.noteStatus(node, status, what);
  const h = flatHeaders(res);
  return { call, res, answer: { status, primary, timestamp: answerTimestamp(h), headers: h } };
}

/** A HEAD to one node: which version it holds (a consistency probe). */
async function headNode(ctx: BackendContext, what: string, node: PlacedNode, primary: boolean, path: string, headers: OutgoingHttpHeaders): Promise<ReadAnswer> {
  const { res, answer } = await askNode(ctx, what, node, primary, 'HEAD', path, headers);
  if (res) discard(res);
  return answer;
}

/** An iterator's values by position, pulled as needed. */
class Lookahead<T> {
  private readonly seen: T[] = [];

  constructor(private readonly source: Iterator<T>) {}

  at(i: number): T | undefined {
    while (this.seen.length <= i) {
      const r = this.source.next();
      if (r.done) return undefined;
      this.seen.push(r.value);
    }
    return this.seen[i];
  }

  /**
   * The positions `skip` does not exclude, in order, pulled as needed. Not a generator: a resuming
   * body loops over it more than once, and a `for...of` that breaks would close a generator.
   */
  except(skip: (i: number) => boolean): IterableIterator<T> {
    let j = 0;
    const it: IterableIterator<T> = {
      next: (): IteratorResult<T> => {
        for (;;) {
          const v = this.at(j);
          if (v === undefined) return { done: true, value: undefined };
          if (skip(j++)) continue;
          return { done: false, value: v };
        }
      },
      [Symbol.iterator]: () => it,
    };
    return it;
  }
}

/**
 * The body of an object GET, resumable. It counts the bytes passed on and, if the serving node
 * fails before the expected length, continues from another replica of the same version (same ETag
 * and X-Backend-Timestamp); with no replica able to continue it destroys itself (never ends short).
 *
 * A node that cuts a full read has often found the replica corrupt (the object server verifies the
 * MD5 of full reads and withholds the last chunk), so the bytes already passed on may be wrong. A
 * full read therefore keeps a CRC-32 of what it passed on (cheap, unlike MD5) and continues with a
 * full, server-verified read of the next replica: its first `offset` bytes must have the same CRC,
 * else the client's copy is known bad and the stream is destroyed. A ranged read (never verified
 * by the object server) continues with a Range request from the byte reached.
 */
export class ResumingBody extends Readable {
  private current: IncomingMessage | undefined;
  private offset = 0;
  private crc = 0;
  private finished = false;
  private resuming = false;

  constructor(
    private readonly ctx: BackendContext,
    first: IncomingMessage,
    private readonly iter: Iterable<VisitedNode<PlacedNode>>,
    private readonly pathOf: (node: PlacedNode) => string,
    private readonly baseHeaders: OutgoingHttpHeaders,
    /** Inclusive byte range of the object this body carries. */
    private readonly range: { start: number; end: number },
    /** True when the body is the whole object (a plain 200), so a full read can re-verify it. */
    private readonly whole: boolean,
    private readonly etag: string,
    private readonly timestamp: Timestamp | undefined,
  ) {
    // 1 MiB: with 64 KiB the backend was paused and resumed for nearly every socket chunk (a
    // 1 GiB GET through the proxy ran at a third of the object server's rate).
    super({ highWaterMark: 1024 * 1024 });
    this.attach(first, 0);
  }

  private get expected(): number {
    return this.range.end - this.range.start + 1;
  }

  /** Passes `res` on; its first `skip` bytes were already passed on and are only checked. */
  private attach(res: IncomingMessage, skip: number): void {
    this.current = res;
    let ended = false;
    let toSkip = skip;
    let skippedCrc = 0;
    res.on('data', (chunk: Buffer) => {
      if (this.finished) return;
      let c = chunk;
      if (toSkip > 0) {
        const head = c.subarray(0, Math.min(toSkip, c.length));
        skippedCrc = crc32(head, skippedCrc);
        toSkip -= head.length;
        c = c.subarray(head.length);
        if (toSkip === 0 && skippedCrc !== this.crc) {
          this.giveUp(`bytes already sent differ from replica ${res.socket?.remoteAddress ?? ''}: the first replica was corrupt`);
          return;
        }
        if (c.length === 0) return;
      }
      if (this.offset + c.length > this.expected) c = c.subarray(0, this.expected - this.offset);
      this.offset += c.length;
      if (this.whole) this.crc = crc32(c, this.crc);
      if (!this.push(c)) {
        // Our client is slow, not the node: no node timeout while we hold the node back.
        res.pause();
        res.socket?.setTimeout(0);
      }
    });
    res.once('end', () => {
      ended = true;
      if (this.finished || this.current !== res) return;
      if (this.offset >= this.expected) {
        this.finished = true;
        this.push(null);
      } else {
        void this.continueElsewhere('ended short');
      }
    });
    res.once('close', () => {
      if (!ended && !this.finished && this.current === res) void this.continueElsewhere('connection lost');
    });
    res.on('error', () => {
      // 'close' follows and handles it.
    });
  }

  override _read(): void {
    const cur = this.current;
    if (cur?.isPaused()) {
      cur.socket?.setTimeout(this.ctx.nodeTimeoutMs);
      cur.resume();
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.finished = true;
    this.current?.destroy();
    cb(err);
  }

  private giveUp(why: string): void {
    if (this.finished) return;
    this.ctx.metrics.readAborts++;
    this.ctx.logger.error({ offset: this.offset, expected: this.expected, why }, 'object read failed mid-body; client stream cut');
    this.finished = true;
    const cur = this.current;
    this.current = undefined;
    cur?.destroy();
    this.destroy(new Error(`object body cut after ${this.offset} of ${this.expected} bytes: ${why}`));
  }

  private async continueElsewhere(why: string): Promise<void> {
    if (this.resuming || this.finished) return;
    this.resuming = true;
    const failed = this.current;
    this.current = undefined;
    failed?.destroy();
    this.ctx.logger.warn({ offset: this.offset, expected: this.expected, why }, 'object read failed mid-body; continuing from another replica');
    const from = this.range.start + this.offset;
    const headers: OutgoingHttpHeaders = { ...this.baseHeaders };
    for (const k of CONDITIONAL_HEADERS) delete headers[k];
    headers['if-match'] = `"${this.etag}"`;
    if (!this.whole) headers['range'] = `bytes=${from}-${this.range.end}`;
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
      const ts = answerTimestamp(h);
      const sameVersion =
        unquoteEtag(h['etag'] ?? '') === this.etag && (!this.timestamp || !ts || ts.equals(this.timestamp));
      let usable = false;
      if (this.whole) usable = status === 200 && Number(h['content-length']) === this.expected;
      else {
        const cr = parseContentRange(h['content-range']);
        usable = status === 206 && cr !== undefined && cr.start === from && cr.end === this.range.end;
      }
      if (usable && sameVersion) {
        if (this.finished) {
          res.destroy();
          return;
        }
        this.ctx.metrics.readResumes++;
        this.resuming = false;
        this.attach(res, this.whole ? this.offset : 0);
        return;
      }
      discard(res);
    }
    this.resuming = false;
    this.giveUp(`no replica could continue (${why})`);
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
