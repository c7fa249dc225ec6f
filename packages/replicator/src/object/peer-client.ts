/**
 * The sender's side of the replication endpoints of a peer object server (contracts.md):
 *   POST /_replicate/<dev>/<part>[/<s1>-<s2>...]  -> {suffix: md5hex}
 *   POST /_replicate/<dev> {partitions}            -> {part: {suffix: md5hex}}
 *   POST /_sync/<dev>/<part>/missing {offered}    -> {wanted}
 *   PUT  /_sync/<dev>/<part>  (tar of <suffix>/<hash>/<file>) -> {received, skipped}
 * Every call is bounded (conn_timeout to connect, then http_timeout or node_timeout of silence)
 * and takes the job's AbortSignal, so a hung peer costs a timeout, never the pass.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage } from 'node:http';
import { createGzip } from 'node:zlib';
import {
  backendConnect,
  backendPath,
  backendRequest,
  backendResponse,
  readBody,
  StoreError,
  type BackendNode,
} from '@swiftlet/common';
import { readFully } from '@swiftlet/diskfile';
import type { BandwidthLimiter } from './bandwidth-limit.js';

export interface PeerTimeouts {
  connTimeoutMs: number;
  /** For REPLICATE answers (hashing a big partition takes a while): http_timeout. */
  httpTimeoutMs: number;
  /** Silence limit for the missing-check and the push: node_timeout. */
  nodeTimeoutMs: number;
  /** Whole push, first byte to answer: sync_timeout. */
  syncTimeoutMs: number;
}

export interface PeerTarget extends BackendNode {
  device: string;
}

/**
 * Files up to this size are read whole with direct calls: a small object's push is otherwise
 * four thread-pool round trips (~45 µs of CPU each) and a read stream per file.
 */
const WHOLE_READ_BYTES = 256 * 1024;

/**
 * The bytes and mtime of a file of at most WHOLE_READ_BYTES; 'large' for a bigger one, undefined
 * for one that is gone. A published file never changes, so a short read means it was damaged or
 * replaced under us: an error (the push fails, the next pass tries again).
 */
function readSmallFile(path: string): { body: Buffer; mtime: Date } | 'large' | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (st.size > WHOLE_READ_BYTES) return 'large';
    const body = Buffer.allocUnsafe(st.size);
    readFully(fd, body, 0, path);
    return { body, mtime: st.mtime };
  } finally {
    closeSync(fd);
  }
}

/** The peer said 507: its device is unmounted or full. */
export class PeerUnavailableError extends StoreError {
  constructor(where: string) {
    super(507, 'PeerInsufficientStorage', `${where}: 507 Insufficient Storage`);
  }
}

export class PeerError extends StoreError {
  constructor(where: string, status: number, body: string) {
    super(502, 'PeerError', `${where}: ${status} ${body.slice(0, 200).trim()}`);
  }
}

/** Only names the object server itself writes are ever pushed (never temp or partial files). */
const FILE_RE = /^\d{10}\.\d{5}(?:_[0-9a-f]{16})?\.(?:data|ts|meta)$/;
const SUFFIX_RE = /^[0-9a-f]{3}$/;
const HASH_RE = /^[0-9a-f]{32}$/;

export function isPushableFile(rel: string): boolean {
  const parts = rel.split('/');
  return (
    parts.length === 3 &&
    SUFFIX_RE.test(parts[0] as string) &&
    HASH_RE.test(parts[1] as string) &&
    (parts[1] as string).endsWith(parts[0] as string) &&
    FILE_RE.test(parts[2] as string)
  );
}

export interface PushResult {
  /** Files the peer now holds (or holds something newer than): offered minus wanted-but-unsent. */
  inSync: string[];
  sent: number;
  bytes: number;
}

/** A peer's answer for one partition of a batched REPLICATE. */
export type BatchedHashes = { hashes: Record<string, string> } | { same: string };

export class PeerClient {
  constructor(
    private readonly timeouts: PeerTimeouts,
    private readonly limiter?: BandwidthLimiter,
  ) {}

  private headers(policyIndex: number, extra: Record<string, string> = {}): Record<string, string> {
    return { 'X-Backend-Storage-Policy-Index': String(policyIndex), 'User-Agent': `object-replicator ${process.pid}`, ...extra };
  }

  private async json<T>(res: IncomingMessage, where: string): Promise<T> {
    const body = await readBody(res);
    if (res.statusCode === 507) throw new PeerUnavailableError(where);
    if (res.statusCode !== 200) throw new PeerError(where, res.statusCode ?? 0, body.toString('utf8'));
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch {
      throw new PeerError(where, 200, `unparseable answer: ${body.toString('utf8').slice(0, 100)}`);
    }
  }

  /** The peer's suffix hashes; with `suffixes`, it recalculates those first. */
  async replicate(
    peer: PeerTarget,
    partition: number,
    policyIndex: number,
    suffixes: readonly string[] | undefined,
    signal: AbortSignal,
  ): Promise<Record<string, string>> {
    const path =
      backendPath('_replicate', peer.device, partition) + (suffixes && suffixes.length ? `/${suffixes.join('-')}` : '');
    const where = `POST ${peer.ip}:${peer.port}${path}`;
    const res = await backendRequest(peer, {
      method: 'POST',
      path,
      headers: this.headers(policyIndex, { 'Content-Length': '0' }),
      connTimeoutMs: this.timeouts.connTimeoutMs,
      nodeTimeoutMs: this.timeouts.httpTimeoutMs,
      signal,
    });
    const hashes = await this.json<Record<string, string>>(res, where);
    if (hashes === null || typeof hashes !== 'object' || Array.isArray(hashes)) throw new PeerError(where, 200, 'answer is not a hash map');
    return hashes;
  }

  /**
   * The peer's suffix hashes of many partitions in one request (POST /_replicate/<dev> with
   * {"partitions": [...]}); a partition the answer leaves out is simply not in the result. With
   * `digests` (ours, per partition), a partition whose digest the peer shares comes back as
   * `{ same: digest }` instead of its hashes.
   */
  async replicateMany(
    peer: PeerTarget,
    policyIndex: number,
    partitions: readonly number[],
    signal: AbortSignal,
    digests?: ReadonlyMap<number, string>,
  ): Promise<Map<number, BatchedHashes>> {
    const path = backendPath('_replicate', peer.device);
    const where = `POST ${peer.ip}:${peer.port}${path}`;
    const body = Buffer.from(JSON.stringify(digests === undefined ? { partitions } : { partitions, digests: Object.fromEntries(digests) }));
    const res = await backendRequest(peer, {
      method: 'POST',
      path,
      headers: this.headers(policyIndex, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }),
      connTimeoutMs: this.timeouts.connTimeoutMs,
      nodeTimeoutMs: this.timeouts.httpTimeoutMs,
      signal,
      body,
    });
    let answer = await this.json<Record<string, unknown>>(res, where);
    const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (!isMap(answer)) throw new PeerError(where, 200, 'answer is not a map of partitions');
    const out = new Map<number, BatchedHashes>();
    if (digests !== undefined) {
      const { same, hashes } = answer;
      if (!Array.isArray(same) || !isMap(hashes)) throw new PeerError(where, 200, 'answer has no "same" list and "hashes" map');
      for (const p of same) {
        const digest = typeof p === 'number' ? digests.get(p) : undefined;
        if (digest !== undefined) out.set(p as number, { same: digest });
      }
      answer = hashes;
    }
    for (const p of partitions) {
      const hashes = answer[String(p)];
      if (isMap(hashes)) out.set(p, { hashes: hashes as Record<string, string> });
    }
    return out;
  }

  /** Which of the offered files the peer lacks and would keep. */
  async missing(peer: PeerTarget, partition: number, policyIndex: number, offered: readonly string[], signal: AbortSignal): Promise<string[]> {
    const path = backendPath('_sync', peer.device, partition, 'missing');
    const where = `POST ${peer.ip}:${peer.port}${path}`;
    const body = Buffer.from(JSON.stringify({ offered }));
    const res = await backendRequest(peer, {
      method: 'POST',
      path,
      headers: this.headers(policyIndex, { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }),
      connTimeoutMs: this.timeouts.connTimeoutMs,
      nodeTimeoutMs: this.timeouts.nodeTimeoutMs,
      signal,
      body,
    });
    const answer = await this.json<{ wanted?: unknown }>(res, where);
    if (!Array.isArray(answer.wanted)) throw new PeerError(where, 200, 'answer has no "wanted" list');
    const offeredSet = new Set(offered);
    // A peer can only ask for what was offered; anything else is ignored, never read from disk.
    return answer.wanted.filter((w): w is string => typeof w === 'string' && offeredSet.has(w));
  }

  /**
   * Streams the wanted files of `partitionDir` as a tar to the peer, one file open at a time, so
   * memory stays flat whatever the partition holds. A wanted file that vanished meanwhile (a newer
   * write cleaned it up) is skipped and not counted as in sync.
   */
  async push(
    peer: PeerTarget,
    partition: number,
    policyIndex: number,
    partitionDir: string,
    wanted: readonly string[],
    signal: AbortSignal,
    onProgress: (bytes: number) => void,
    opts: { compress?: boolean; recalculate?: readonly string[] } = {},
  ): Promise<{ sent: string[]; bytes: number; received: number; recalculated: boolean }> {
    // Loaded by the first push: a pass over an in-sync cluster pushes nothing, and a replicator
    // run with --once starts ~17 ms of CPU sooner without it.
    const { default: tar } = await import('tar-stream');
    const path = backendPath('_sync', peer.device, partition);
    const where = `PUT ${peer.ip}:${peer.port}${path}`;
    const deadline = AbortSignal.timeout(this.timeouts.syncTimeoutMs);
    const pushSignal = AbortSignal.any([signal, deadline]);
    const req = await backendConnect(peer, {
      method: 'PUT',
      path,
      headers: this.headers(policyIndex, {
        'Content-Type': 'application/x-tar',
        'Transfer-Encoding': 'chunked',
        ...(opts.compress ? { 'Content-Encoding': 'gzip' } : {}),
        // The peer rehashes these suffixes once the push is published and answers with its
        // hashes: the recalculating REPLICATE in the same round trip. A peer that ignores the
        // header answers without them, and is asked separately.
        ...(opts.recalculate?.length ? { 'X-Recalculate-Suffixes': opts.recalculate.join('-') } : {}),
      }),
      connTimeoutMs: this.timeouts.connTimeoutMs,
      nodeTimeoutMs: this.timeouts.nodeTimeoutMs,
      signal: pushSignal,
    });
    const responded = backendResponse(req);
    responded.catch(() => undefined);
    const pack = tar.pack();
    const sent: string[] = [];
    const feed = (async (): Promise<void> => {
      for (const rel of wanted) {
        if (pushSignal.aborted) throw pushSignal.reason as Error;
        const path = join(partitionDir, rel);
        const small = readSmallFile(path);
        if (small === undefined) continue; // removed since it was listed (a newer version won)
        if (small !== 'large') {
          await new Promise<void>((resolve, reject) =>
            pack.entry({ name: rel, size: small.body.length, mode: 0o644, mtime: small.mtime }, small.body, (err) => (err ? reject(err) : resolve())),
          );
          sent.push(rel);
          continue;
        }
        let fh;
        try {
          fh = await open(path, 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        try {
          const st = await fh.stat();
          await new Promise<void>((resolve, reject) => {
            const done = (err?: Error | null): void => (err ? reject(err) : resolve());
            const entry = pack.entry({ name: rel, size: st.size, mode: 0o644, mtime: st.mtime }, done);
            const src = fh.createReadStream({ autoClose: false, start: 0, end: st.size - 1 });
            src.on('error', (e) => {
              entry.destroy(e);
              reject(e);
            });
            src.pipe(entry);
          });
          sent.push(rel);
        } finally {
          await fh.close();
        }
      }
      pack.finalize();
    })();
    feed.catch((err: unknown) => pack.destroy(err as Error));
    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        bytes += chunk.length;
        onProgress(chunk.length);
        cb(null, chunk);
      },
    });
    try {
      // Level 1: tar headers and padding shrink to almost nothing at little CPU cost. The tar's
      // pieces (a 512-byte header, a body, its padding) go to gzip in runs of 64 KiB: each write
      // to a zlib stream is a thread-pool job.
      const source = opts.compress
        ? Readable.from(coalesce(pack as AsyncIterable<Buffer>, 64 * 1024)).pipe(createGzip({ level: 1, chunkSize: 64 * 1024 }))
        : Readable.from(pack as AsyncIterable<Buffer>);
      if (this.limiter) await pipeline(source, this.limiter.stream(pushSignal), counter, req, { signal: pushSignal });
      else await pipeline(source, counter, req, { signal: pushSignal });
      await feed;
      const res = await responded;
      const answer = await this.json<{ received?: number; skipped?: number; hashes?: unknown }>(res, where);
      const recalculated = typeof answer.hashes === 'object' && answer.hashes !== null;
      return { sent, bytes, received: Number(answer.received ?? 0), recalculated };
    } catch (err) {
      req.destroy();
      if (deadline.aborted && !signal.aborted) throw new PeerError(where, 0, `push exceeded sync_timeout (${this.timeouts.syncTimeoutMs} ms)`);
      // The peer may have refused the body early (400/507) and closed: report its answer if any.
      const res = await Promise.race([responded, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]).catch(() => undefined);
      if (res && res.statusCode !== 200) await this.json(res, where); // throws the peer's reason
      throw err;
    }
  }
}

/** The stream's chunks joined into runs of at least `bytes` (the last may be shorter). */
async function* coalesce(source: AsyncIterable<Buffer>, bytes: number): AsyncGenerator<Buffer> {
  let run: Buffer[] = [];
  let length = 0;
  for await (const chunk of source) {
    run.push(chunk);
    length += chunk.length;
    if (length >= bytes) {
      yield run.length === 1 ? (run[0] as Buffer) : Buffer.concat(run, length);
      run = [];
      length = 0;
    }
  }
  if (length > 0) yield Buffer.concat(run, length);
}
