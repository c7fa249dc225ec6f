/**
 * Writes: the streaming PUT fan-out (design §8.4) and the concurrent quorum requests of DELETE,
 * POST and container/account writes (§8.6). Every slot (one per replica) pulls nodes from one
 * shared NodeIter, so a handoff takes the place of a primary that is down, limited, or answers
 * 507/5xx; the client answer is Swift's best_response over the slots' statuses.
 */
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { crc32 } from 'node:zlib';
import { releaseBuffer } from '@swiftlet/common';

import type { BackendCall } from './backend-call.js';
import { discard, flatHeaders, within } from './backend-call.js';
import type { BackendContext } from './context.js';
import { answerHeaders, unquoteEtag } from './headers.js';
import type { NodeIter, PlacedNode } from './node-iter.js';
import { bestResponseIndex, haveQuorum, quorumSize } from './quorum.js';

export interface WriteAnswer {
  status: number;
  headers: Record<string, string>;
}

/** Statuses a PUT keeps as a node's final answer at connect time (no body sent). */
function isFinalAtConnect(status: number): boolean {
  return (status >= 200 && status < 300) || (status >= 400 && status < 500);
}

type Slot =
  | { kind: 'writer'; call: BackendCall; node: PlacedNode; handoff: boolean }
  | { kind: 'final'; answer: WriteAnswer }
  | { kind: 'none' };

/** Connects one PUT slot: the next usable node that answers 100 Continue (or a final answer). */
async function connectPutSlot(
  ctx: BackendContext,
  iter: NodeIter<PlacedNode>,
  pathOf: (node: PlacedNode) => string,
  headers: OutgoingHttpHeaders,
): Promise<Slot> {
  for (const { node, primary } of iter) {
    const call = ctx.open(node, 'PUT', pathOf(node), headers, 'expect');
    try {
      const first = await Promise.race([
        call.continued.then(() => undefined),
        call.response,
      ]);
      if (first === undefined) {
        call.holdTimeout();
        return { kind: 'writer', call, node, handoff: !primary };
      }
      const res: IncomingMessage = first;
      const status = res.statusCode ?? 503;
      const h = flatHeaders(res);
      discard(res);
      ctx.noteStatus(node, status, 'Object');
      if (isFinalAtConnect(status)) return { kind: 'final', answer: { status, headers: h } };
    } catch (err) {
      // A failed 100-continue wait is also seen as a failed `response`; take whichever came.
      call.abort();
      ctx.noteError(node, call.error ?? err, 'Object');
    }
  }
  return { kind: 'none' };
}

export interface PutParams {
  iter: NodeIter<PlacedNode>;
  replicas: number;
  pathOf: (node: PlacedNode) => string;
  /** One header set per slot (container update targets differ per slot). */
  slotHeaders: OutgoingHttpHeaders[];
  body: NodeJS.ReadableStream;
  contentLength: number | undefined;
  /**
   * The body's MD5 (lower-case hex) when the caller checks it itself before the body's last byte
   * (S3's Content-MD5, PayloadVerifier): the trailer carries it and the body is not hashed again.
   */
  bodyMd5?: string;
}

/**
 * Headers of a streamed PUT: the body goes chunked, its length in X-Backend-Obj-Content-Length,
 * and its MD5 and CRC-32 follow it as trailers (the object server's checksumTrailer): the proxy
 * hashes the body with MD5 once instead of every replica doing it.
 */
function withChecksumTrailer(headers: OutgoingHttpHeaders, contentLength: number | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ...headers };
  delete out['content-length'];
  out['transfer-encoding'] = 'chunked';
  if (contentLength !== undefined) out['x-backend-obj-content-length'] = String(contentLength);
  out['x-backend-checksum-trailer'] = 'md5,crc32';
  out['trailer'] = 'X-Backend-Etag, X-Backend-Body-Crc32';
  return out;
}

/** A PUT streamed to every slot's node at once. Resolves with the client's answer. */
export async function putToNodes(ctx: BackendContext, p: PutParams): Promise<WriteAnswer> {
  const n = p.slotHeaders.length;
  const quorum = quorumSize(p.replicas);
  const slots = await Promise.all(
    p.slotHeaders.map((h) => connectPutSlot(ctx, p.iter, p.pathOf, withChecksumTrailer(h, p.contentLength))),
  );
  const writers = slots.filter((s): s is Extract<Slot, { kind: 'writer' }> => s.kind === 'writer');
  const finals = slots.filter((s): s is Extract<Slot, { kind: 'final' }> => s.kind === 'final').map((s) => s.answer);
  const abortAll = (): void => writers.forEach((w) => w.call.abort());

  if (finals.some((a) => a.status === 412)) {
    abortAll();
    return { status: 412, headers: {} };
  }
  if (finals.some((a) => a.status === 409)) {
    abortAll();
    const ts = finals.find((a) => a.status === 409)?.headers['x-backend-timestamp'];
    return { status: 202, headers: ts ? { 'x-backend-timestamp': ts } : {} };
  }
  const clientError = finals.find((a) => a.status >= 400 && a.status < 500);
  if (clientError) {
    abortAll();
    return { status: clientError.status, headers: answerHeaders(clientError.headers) };
  }
  const early2xx = finals.filter((a) => a.status < 300).length;
  if (writers.length + early2xx < quorum) {
    abortAll();
    ctx.metrics.quorumFailures++;
    ctx.logger.error({ writers: writers.length, quorum }, 'Object PUT: not enough connections for a quorum');
    return { status: 503, headers: {} };
  }
  for (const w of writers) if (w.handoff) ctx.metrics.handoffWrites++;

  const streamed = await streamBody(ctx, writers.map((w) => w.call), p.body, p.contentLength, quorum - early2xx, p.bodyMd5);
  if (streamed !== 'ok') {
    abortAll();
    if (streamed === 'quorum-lost') {
      ctx.metrics.quorumFailures++;
      return { status: 503, headers: {} };
    }
    return { status: 499, headers: {} };
  }
  const answers = await collectAnswers(ctx, writers.map((w) => w.call), p.replicas, finals);
  return decide(ctx, answers, n, p.replicas, true);
}

/**
 * Pumps the client body into every live writer. The source is paused until every writer that
 * signalled backpressure drained; a writer that errors is dropped; fewer than `needed` live
 * writers -> 'quorum-lost'. A body shorter than Content-Length or a source error -> 'client'.
 */
function streamBody(
  ctx: BackendContext,
  calls: BackendCall[],
  body: NodeJS.ReadableStream,
  contentLength: number | undefined,
  needed: number,
  knownMd5: string | undefined,
): Promise<'ok' | 'quorum-lost' | 'client'> {
  return new Promise((resolve) => {
    const live = new Set(calls);
    const waiting = new Set<BackendCall>();
    let sent = 0;
    // A known MD5 (the caller verifies it before the last byte reaches us) spares a second hash.
    const md5 = knownMd5 === undefined ? createHash('md5') : undefined;
    let crc = 0;
    let done = false;
    const cleanups: (() => void)[] = [];
    const finish = (r: 'ok' | 'quorum-lost' | 'client'): void => {
      if (done) return;
      done = true;
      for (const c of cleanups) c();
      if (r !== 'ok') body.pause();
      resolve(r);
    };
    const drop = (call: BackendCall, why: unknown): void => {
      if (done || !live.delete(call)) return;
      waiting.delete(call);
      ctx.noteError(call.node, why, 'Object');
      call.abort();
      if (live.size < needed) {
        ctx.logger.error({ live: live.size, needed }, 'Object PUT: quorum lost while streaming');
        finish('quorum-lost');
      } else if (waiting.size === 0) body.resume();
    };
    for (const call of calls) {
      // The node timeout runs only while we wait on the node (a full buffer, then its answer):
      // a client that is slow to send is bounded by the client-side timeout, not by this one.
      const onDrain = (): void => {
        call.holdTimeout();
        if (waiting.delete(call) && waiting.size === 0 && !done) body.resume();
      };
      call.req.on('drain', onDrain);
      // `failed` also reports an error that happened while other slots were still connecting.
      void call.failed.then((err) => drop(call, err));
      // A final answer while we still send means the node gave up (e.g. 507 disk full, 408).
      void call.response.then((res) => {
        if (!done && (res.statusCode ?? 503) >= 300) drop(call, new Error(`status ${res.statusCode} while sending`));
      }, () => undefined);
      cleanups.push(() => {
        call.req.off('drain', onDrain);
      });
    }
    const onData = (chunk: Buffer | string): void => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      sent += buf.length;
      if (contentLength !== undefined && sent > contentLength) {
        finish('client');
        return;
      }
      md5?.update(buf);
      crc = crc32(buf, crc);
      // Freed once every node's socket has taken it (releaseBuffer), not at the next garbage
      // collection; a failed write leaves it to the collector. One count held by the loop itself.
      let unwritten = 1;
      let failed = false;
      const written = (err?: Error | null): void => {
        if (err) failed = true;
        if (--unwritten === 0 && !failed) releaseBuffer(buf);
      };
      for (const call of live) {
        if (call.req.destroyed) drop(call, call.error ?? new Error('connection closed'));
        else {
          unwritten++;
          if (!call.req.write(buf, written)) {
            if (!waiting.has(call)) call.armTimeout();
            waiting.add(call);
          }
        }
      }
      written();
      if (done) return;
      if (waiting.size > 0) body.pause();
    };
    const onEnd = (): void => {
      if (contentLength !== undefined && sent !== contentLength) {
        ctx.logger.warn({ sent, contentLength }, 'Object PUT: client body ended short');
        finish('client');
        return;
      }
      const trailers = { 'X-Backend-Etag': knownMd5 ?? (md5 as Hash).digest('hex'), 'X-Backend-Body-Crc32': crc.toString(16).padStart(8, '0') };
      for (const call of live) {
        call.armTimeout();
        call.req.addTrailers(trailers);
        call.req.end();
      }
      finish('ok');
    };
    const onSourceError = (err: Error): void => {
      ctx.logger.warn({ err: err.message, sent }, 'Object PUT: client body failed');
      finish('client');
    };
    const onClose = (): void => {
      // A source that closes without 'end' (client gone) is a short body.
      setImmediate(() => {
        if (!done) finish('client');
      });
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onSourceError);
    body.once('close', onClose);
    cleanups.push(() => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onSourceError);
      body.off('close', onClose);
    });
    body.resume();
  });
}

/**
 * Waits for the writers' final answers until a quorum agrees, then up to post_quorum_timeout for
 * the others; those still missing count as 503. Their requests go on (they may still succeed).
 */
async function collectAnswers(
  ctx: BackendContext,
  calls: BackendCall[],
  replicas: number,
  earlier: WriteAnswer[],
): Promise<WriteAnswer[]> {
  const answers: WriteAnswer[] = earlier.slice();
  let quorumReached: () => void = () => undefined;
  const reached = new Promise<void>((r) => (quorumReached = r));
  const check = (): void => {
    if (haveQuorum(answers.map((a) => a.status), replicas)) quorumReached();
  };
  check();
  const all = Promise.all(
    calls.map(async (call) => {
      try {
        const res = await call.response;
        const status = res.statusCode ?? 503;
        ctx.noteStatus(call.node, status, 'Object');
        answers.push({ status, headers: flatHeaders(res) });
        discard(res);
      } catch (err) {
        ctx.noteError(call.node, err, 'Object');
        answers.push({ status: 503, headers: {} });
      }
      check();
    }),
  );
  await Promise.race([all, reached]);
  if (answers.length < calls.length + earlier.length) {
    await within(all, ctx.conf.postQuorumTimeoutS * 1000);
  }
  return answers.slice();
}

/** Swift's best_response, plus the ETag agreement check of a PUT. */
export function decide(ctx: BackendContext, answers: WriteAnswer[], slots: number, replicas: number, isPut: boolean): WriteAnswer {
  const statuses = answers.map((a) => a.status);
  if (isPut) {
    const etags = new Set(answers.filter((a) => a.status >= 200 && a.status < 300 && a.headers['etag']).map((a) => unquoteEtag(a.headers['etag'] as string)));
    if (etags.size > 1) {
      ctx.logger.error({ etags: [...etags] }, 'Object PUT: backends disagree on the ETag');
      return { status: 500, headers: {} };
    }
  }
  const i = bestResponseIndex(statuses, Math.max(slots, replicas), quorumSize(replicas));
  if (i === undefined) {
    ctx.metrics.quorumFailures++;
    ctx.logger.error({ statuses }, `returning 503 for ${JSON.stringify(statuses)}`);
    return { status: 503, headers: {} };
  }
  const a = answers[i] as WriteAnswer;
  // Every write was refused as not newer than what is stored: Swift's 202.
  if (isPut && a.status === 409) return { status: 202, headers: {} };
  return { status: a.status, headers: answerHeaders(a.headers) };
}

/**
 * DELETE, POST, container and account writes: one request per slot at once, each walking the
 * shared node iterator until an answer that is not a 5xx; a handoff's 404 without a timestamp is
 * not counted. Quorum as for PUT, then best_response.
 */
export async function makeRequests(
  ctx: BackendContext,
  what: string,
  iter: NodeIter<PlacedNode>,
  replicas: number,
  method: string,
  pathOf: (node: PlacedNode) => string,
  slotHeaders: OutgoingHttpHeaders[],
  body?: string | Uint8Array,
): Promise<WriteAnswer> {
  const answers: WriteAnswer[] = [];
  let quorumReached: () => void = () => undefined;
  const reached = new Promise<void>((r) => (quorumReached = r));
  const one = async (headers: OutgoingHttpHeaders): Promise<void> => {
    for (const { node, primary } of iter) {
      const call = ctx.open(node, method, pathOf(node), headers, body);
      try {
        const res = await call.response;
        const status = res.statusCode ?? 503;
        const h = flatHeaders(res);
        discard(res);
        ctx.noteStatus(node, status, what);
        if (status >= 500) continue;
        if (!primary) ctx.metrics.handoffWrites++;
        if (!primary && status === 404 && !h['x-backend-timestamp']) return;
        answers.push({ status, headers: h });
        if (haveQuorum(answers.map((a) => a.status), replicas)) quorumReached();
        return;
      } catch (err) {
        ctx.noteError(node, err, what);
      }
    }
  };
  const all = Promise.all(slotHeaders.map(one));
  await Promise.race([all, reached]);
  if (answers.length < slotHeaders.length) await within(all, ctx.conf.postQuorumTimeoutS * 1000);
  return decide(ctx, answers.slice(), slotHeaders.length, replicas, false);
}


/** Bodies up to this size are read whole first and sent with their headers in one write. */
export const SMALL_PUT_BYTES = 64 * 1024;

/**
 * A small PUT: the body is in memory, so each slot sends headers and body at once (no
 * 100-continue round trip, one write) and, on 507, 5xx or an error, simply sends it again to the
 * next node (a handoff). Same answers as the streaming PUT: any 412 -> 412, any 409 -> 202,
 * different ETags -> 500, else best_response.
 */
export async function putSmallToNodes(
  ctx: BackendContext,
  iter: NodeIter<PlacedNode>,
  replicas: number,
  pathOf: (node: PlacedNode) => string,
  slotHeaders: OutgoingHttpHeaders[],
  body: Buffer,
): Promise<WriteAnswer> {
  const answers: WriteAnswer[] = [];
  let quorumReached: () => void = () => undefined;
  const reached = new Promise<void>((r) => (quorumReached = r));
  const one = async (headers: OutgoingHttpHeaders): Promise<void> => {
    for (const { node, primary } of iter) {
      const call = ctx.open(node, 'PUT', pathOf(node), headers, body);
      try {
        const res = await call.response;
        const status = res.statusCode ?? 503;
        const h = flatHeaders(res);
        discard(res);
        ctx.noteStatus(node, status, 'Object');
        if (status >= 500) continue;
        if (!primary) ctx.metrics.handoffWrites++;
        answers.push({ status, headers: h });
        if (haveQuorum(answers.map((a) => a.status), replicas)) quorumReached();
        return;
      } catch (err) {
        ctx.noteError(node, err, 'Object');
      }
    }
  };
  const all = Promise.all(slotHeaders.map(one));
  await Promise.race([all, reached]);
  if (answers.length < slotHeaders.length) await within(all, ctx.conf.postQuorumTimeoutS * 1000);
  const got = answers.slice();
  if (got.some((a) => a.status === 412)) return { status: 412, headers: {} };
  const conflict = got.find((a) => a.status === 409);
  if (conflict) {
    const ts = conflict.headers['x-backend-timestamp'];
    return { status: 202, headers: ts ? { 'x-backend-timestamp': ts } : {} };
  }
  return decide(ctx, got, slotHeaders.length, replicas, true);
}

/**
 * Reads a small body whole (at most `length` bytes). Undefined when the source ends short or
 * fails (the client went away: 499).
 */
export function readSmallBody(body: NodeJS.ReadableStream, length: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let done = false;
    const finish = (v: Buffer | undefined): void => {
      if (done) return;
      done = true;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      resolve(v);
    };
    const onData = (c: Buffer | string): void => {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      got += b.length;
      if (got > length) finish(undefined);
      else chunks.push(b);
    };
    const onEnd = (): void => finish(got === length ? (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, got)) : undefined);
    const onError = (): void => finish(undefined);
    const onClose = (): void => {
      setImmediate(() => finish(undefined));
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    body.resume();
  });
}
