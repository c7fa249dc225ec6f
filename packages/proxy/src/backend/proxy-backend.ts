/**
 * The proxy's data path: the object, container and account controllers of Swift's proxy, without
 * the client protocol (the S3 layer in ../s3 calls this). Assigns one X-Timestamp per client write,
 * looks nodes up in the rings (loaded once; they reload themselves when the file changes), and
 * speaks the storage servers' backend API with quorum, handoffs and error limiting.
 *
 * Header names in every BackendResponse are lower-case; `etag` is the bare md5 hex (no quotes).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { SwiftConf, Timestamp, backendPath, readBody, type Logger } from '@swiftlet/common';
import { Ring } from '@swiftlet/ring';
import { discard } from './backend-call.js';
import { withDefaults, type ProxyBackendConfig } from './config.js';
import { BackendContext, newMetrics, type BackendMetrics } from './context.js';
import { ErrorLimiter, type Clock, systemClock } from './error-limiter.js';
import { pairContainerTargets } from './container-targets.js';
import { answerHeaders, forwardableHeaders, unquoteEtag } from './headers.js';
import { NodeIter, NodeTimings, sortPrimaries, type PlacedNode } from './node-iter.js';
import { quorumSize } from './quorum.js';
import { ResumingBody, readFromNodes, servedRange } from './read-path.js';
import { answerTimestamp } from './read-resolver.js';
import { SMALL_PUT_BYTES, makeRequests, putSmallToNodes, putToNodes, readSmallBody, type WriteAnswer } from './write-path.js';

export interface BackendResponse {
  status: number;
  headers: Record<string, string>;
  body?: NodeJS.ReadableStream;
}

export interface ListingQuery {
  prefix?: string;
  delimiter?: string;
  marker?: string;
  endMarker?: string;
  limit?: number;
  reverse?: boolean;
}

export interface ObjectRow {
  name: string;
  hash: string;
  bytes: number;
  content_type: string;
  last_modified: string;
}
export interface ContainerRow {
  name: string;
  count: number;
  bytes: number;
  last_modified: string;
}
export interface SubdirRow {
  subdir: string;
}

export interface Listing<R> {
  status: number;
  headers: Record<string, string>;
  rows: Array<R | SubdirRow>;
}

/** The subset of a Ring the backend uses (a Ring satisfies it). */
export interface RingLike {
  getNodes(account: string, container?: string, object?: string): { part: number; nodes: PlacedNode[] };
  getMoreNodes(part: number): Iterator<PlacedNode>;
}

export interface ProxyBackendOptions {
  swiftDir: string;
  logger: Logger;
  conf: ProxyBackendConfig;
  /** Seconds clock for error limiting and timings (tests). */
  clock?: Clock;
}

interface ContainerInfo {
  status: number;
  policyIndex: number;
  headers: Record<string, string>;
  expiresAtMs: number;
}

export class ProxyBackend {
  readonly metrics: BackendMetrics;
  readonly limiter: ErrorLimiter;
  private readonly ctx: BackendContext;
  private readonly conf: Required<ProxyBackendConfig>;
  private readonly logger: Logger;
  private readonly swiftDir: string;
  private readonly swiftConf: SwiftConf;
  private readonly objectRings = new Map<number, Ring>();
  private containerRing_: Ring | undefined;
  private accountRing_: Ring | undefined;
  private readonly containerCache = new Map<string, ContainerInfo>();
  private readonly accountCache = new Map<string, number>();

  constructor(opts: ProxyBackendOptions) {
    this.conf = withDefaults(opts.conf);
    this.logger = opts.logger;
    this.swiftDir = opts.swiftDir;
    this.swiftConf = SwiftConf.load(opts.swiftDir);
    this.metrics = newMetrics();
    const clock = opts.clock ?? systemClock;
    this.limiter = new ErrorLimiter(this.conf.errorSuppressionLimit, this.conf.errorSuppressionIntervalS, opts.logger, clock);
    this.ctx = new BackendContext(this.conf, this.limiter, new NodeTimings(this.conf.timingExpiryS, clock), this.metrics, opts.logger);
  }

  // ---- rings -------------------------------------------------------------------------------

  /** The object ring of a storage policy (503 if the policy is unknown or its ring is missing). */
  objectRing(policyIndex: number): Ring {
    let ring = this.objectRings.get(policyIndex);
    if (!ring) {
      if (!this.swiftConf.policy(policyIndex)) throw new BackendFailure(503, `unknown storage policy ${policyIndex}`);
      ring = Ring.forKind(this.swiftDir, 'object', policyIndex);
      this.objectRings.set(policyIndex, ring);
    }
    return ring;
  }

  containerRing(): Ring {
    this.containerRing_ ??= Ring.forKind(this.swiftDir, 'container');
    return this.containerRing_;
  }

  accountRing(): Ring {
    this.accountRing_ ??= Ring.forKind(this.swiftDir, 'account');
    return this.accountRing_;
  }

  private iterFor(ring: RingLike, part: number, primaries: PlacedNode[], forRead: boolean): NodeIter<PlacedNode> {
    const ordered = forRead ? sortPrimaries(primaries, this.conf.sortingMethod, this.ctx.timings) : primaries;
    const max = this.conf.requestNodeCount > 0 ? this.conf.requestNodeCount : 2 * primaries.length;
    return new NodeIter(ordered, ring.getMoreNodes(part), this.limiter, max);
  }

  /** Snapshot of the counters plus the nodes error-limited right now. */
  stats(): BackendMetrics & { errorLimitedNodes: string[]; suppressions: number } {
    return { ...this.metrics, errorLimitedNodes: this.limiter.limitedNodes(), suppressions: this.limiter.suppressions };
  }

  // ---- objects -----------------------------------------------------------------------------

  /** The policy of an object request: the container's (cached lookup), or the caller's/default. */
  private async objectPolicy(account: string, container: string, headers?: Record<string, string>): Promise<number | BackendResponse> {
    if (!this.conf.checkContainerExistence) {
      const given = headers ? lowerGet(headers, 'x-backend-storage-policy-index') : undefined;
      return given !== undefined ? Number(given) : this.swiftConf.defaultPolicy.index;
    }
    const info = await this.containerInfo(account, container);
    if (info.status === 404) return { status: 404, headers: {} };
    if (info.status < 200 || info.status >= 300) return { status: 503, headers: {} };
    return info.policyIndex;
  }

  private async containerInfo(account: string, container: string): Promise<ContainerInfo> {
    const key = `${account}/${container}`;
    const cached = this.containerCache.get(key);
    if (cached && cached.expiresAtMs > Date.now()) return cached;
    const res = await this.headContainer(account, container);
    const policy = Number(res.headers['x-backend-storage-policy-index'] ?? this.swiftConf.defaultPolicy.index);
    const info: ContainerInfo = {
      status: res.status,
      policyIndex: Number.isInteger(policy) ? policy : this.swiftConf.defaultPolicy.index,
      headers: res.headers,
      expiresAtMs: Date.now() + this.conf.recheckContainerExistenceS * 1000,
    };
    // Only positive answers are cached: a bucket created through another proxy must work at once.
    if (res.status >= 200 && res.status < 300 && this.conf.recheckContainerExistenceS > 0) this.containerCache.set(key, info);
    else this.containerCache.delete(key);
    return info;
  }

  /** Per-slot container update targets (Swift's _backend_requests / num_container_updates). */
  /** Each slot's X-Container-* headers (container-targets.ts): slot i is objectNodes[i]'s. */
  private containerUpdateHeaders(account: string, container: string, objectNodes: readonly PlacedNode[]): OutgoingHttpHeaders[] {
    const out: OutgoingHttpHeaders[] = objectNodes.map(() => ({}));
    let cpart: number;
    let cnodes: PlacedNode[];
    try {
      ({ part: cpart, nodes: cnodes } = this.containerRing().getNodes(account, container));
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'no container ring: objects will not update container listings');
      return out;
    }
    pairContainerTargets(objectNodes, cnodes).forEach((targets, s) => {
      if (targets.length === 0) return;
      const chosen = targets.map((t) => cnodes[t] as PlacedNode);
      out[s] = {
        'x-container-partition': String(cpart),
        'x-container-host': chosen.map((c) => `${c.ip}:${c.port}`).join(','),
        'x-container-device': chosen.map((c) => c.device).join(','),
      };
    });
    return out;
  }

  private objectPlacement(policy: number, account: string, container: string, object: string) {
    const ring = this.objectRing(policy);
    const { part, nodes } = ring.getNodes(account, container, object);
    const pathOf = (node: PlacedNode): string => backendPath(node.device, part, account, container, object);
    return { ring, part, nodes, pathOf };
  }

  async putObject(
    account: string,
    container: string,
    object: string,
    /** The body as a stream, or whole when the caller has it in memory (small bodies skip a read). */
    body: NodeJS.ReadableStream | Buffer,
    headers: Record<string, string>,
    /** `bodyMd5`: the body's MD5 (hex), when the caller checks it before the body's last byte. */
    opts: { bodyMd5?: string } = {},
  ): Promise<BackendResponse> {
    return this.guard(async () => {
      const policy = await this.objectPolicy(account, container, headers);
      if (typeof policy !== 'number') return policy;
      const { ring, part, nodes, pathOf } = this.objectPlacement(policy, account, container, object);
      const timestamp = writeTimestamp(headers);
      const base = forwardableHeaders(headers);
      base['x-timestamp'] = timestamp.internal;
      base['x-backend-storage-policy-index'] = String(policy);
      base['content-type'] ??= 'application/octet-stream';
      const lengthRaw = lowerGet(headers, 'content-length');
      const contentLength = lengthRaw !== undefined && lengthRaw !== '' ? Number(lengthRaw) : undefined;
      if (contentLength !== undefined && (!Number.isSafeInteger(contentLength) || contentLength < 0)) {
        return { status: 400, headers: {} };
      }
      if (contentLength !== undefined) base['content-length'] = String(contentLength);
      else base['transfer-encoding'] = 'chunked';
      const slotHeaders = this.containerUpdateHeaders(account, container, nodes).map((h) => ({ ...base, ...h }));
      let answer: WriteAnswer;
      if (contentLength !== undefined && contentLength <= SMALL_PUT_BYTES) {
        const whole = Buffer.isBuffer(body) ? (body.length === contentLength ? body : undefined) : await readSmallBody(body, contentLength);
        if (!whole) return { status: 499, headers: {} };
        answer = await putSmallToNodes(this.ctx, this.iterFor(ring, part, nodes, false), nodes.length, pathOf, slotHeaders, whole);
      } else answer = await putToNodes(this.ctx, {
        iter: this.iterFor(ring, part, nodes, false),
        replicas: nodes.length,
        pathOf,
        slotHeaders,
        body: Buffer.isBuffer(body) ? Readable.from(body.length > 0 ? [body] : []) : body,
        contentLength,
        ...(opts.bodyMd5 !== undefined ? { bodyMd5: opts.bodyMd5 } : {}),
      });
      if (answer.status >= 200 && answer.status < 300 && answer.status !== 202) {
        return {
          status: 201,
          headers: {
            etag: unquoteEtag(answer.headers['etag'] ?? ''),
            'x-timestamp': timestamp.normal,
            'x-backend-timestamp': timestamp.internal,
            'last-modified': timestamp.toHttpDate(),
          },
        };
      }
      return { status: answer.status, headers: answer.headers };
    });
  }

  async getObject(account: string, container: string, object: string, headers: Record<string, string> = {}): Promise<BackendResponse> {
    return this.readObject('GET', account, container, object, headers);
  }

  async headObject(account: string, container: string, object: string, headers: Record<string, string> = {}): Promise<BackendResponse> {
    return this.readObject('HEAD', account, container, object, headers);
  }

  private async readObject(
    method: 'GET' | 'HEAD',
    account: string,
    container: string,
    object: string,
    headers: Record<string, string>,
  ): Promise<BackendResponse> {
    return this.guard(async () => {
      const policy = await this.objectPolicy(account, container, headers);
      if (typeof policy !== 'number') return policy;
      const { ring, part, nodes, pathOf } = this.objectPlacement(policy, account, container, object);
      const base = forwardableHeaders(headers);
      base['x-backend-storage-policy-index'] = String(policy);
      const iter = this.iterFor(ring, part, nodes, true);
      const readQuorum = this.conf.consistentReads ? nodes.length - quorumSize(nodes.length) + 1 : 1;
      const r = await readFromNodes(this.ctx, 'Object', iter, nodes.length, method, pathOf, base, readQuorum);
      if (!r.res) return { status: r.status, headers: r.headers };
      if (method === 'HEAD') {
        discard(r.res);
        return { status: r.status, headers: r.headers };
      }
      const range = servedRange(r.status, r.headers);
      const etag = r.headers['etag'];
      if (!range || !etag || r.status >= 300) {
        // Not resumable (multipart ranges, 304/412/416 answers): handed on as it is.
        return { status: r.status, headers: r.headers, body: r.res };
      }
      const whole = r.status === 200;
      const body = new ResumingBody(this.ctx, r.res, r.rest, pathOf, base, range, whole, etag, answerTimestamp(r.res.headers));
      return { status: r.status, headers: r.headers, body };
    });
  }

  async deleteObject(account: string, container: string, object: string, headers: Record<string, string> = {}): Promise<BackendResponse> {
    return this.guard(async () => {
      const policy = await this.objectPolicy(account, container, headers);
      if (typeof policy !== 'number') return policy;
      const { ring, part, nodes, pathOf } = this.objectPlacement(policy, account, container, object);
      const timestamp = writeTimestamp(headers);
      const base = forwardableHeaders(headers);
      base['x-timestamp'] = timestamp.internal;
      base['x-backend-storage-policy-index'] = String(policy);
      const slotHeaders = this.containerUpdateHeaders(account, container, nodes).map((h) => ({ ...base, ...h }));
      const a = await makeRequests(this.ctx, 'Object', this.iterFor(ring, part, nodes, false), nodes.length, 'DELETE', pathOf, slotHeaders);
      return { status: a.status, headers: { ...a.headers, 'x-timestamp': timestamp.normal } };
    });
  }

  async postObject(account: string, container: string, object: string, headers: Record<string, string>): Promise<BackendResponse> {
    return this.guard(async () => {
      const policy = await this.objectPolicy(account, container, headers);
      if (typeof policy !== 'number') return policy;
      const { ring, part, nodes, pathOf } = this.objectPlacement(policy, account, container, object);
      const timestamp = writeTimestamp(headers);
      const base = forwardableHeaders(headers);
      base['x-timestamp'] = timestamp.internal;
      base['x-backend-storage-policy-index'] = String(policy);
      const slotHeaders = this.containerUpdateHeaders(account, container, nodes).map((h) => ({ ...base, ...h }));
      const a = await makeRequests(this.ctx, 'Object', this.iterFor(ring, part, nodes, false), nodes.length, 'POST', pathOf, slotHeaders);
      return { status: a.status, headers: a.headers };
    });
  }

  // ---- containers --------------------------------------------------------------------------

  private containerPlacement(account: string, container: string) {
    const ring = this.containerRing();
    const { part, nodes } = ring.getNodes(account, container);
    const pathOf = (node: PlacedNode): string => backendPath(node.device, part, account, container);
    return { ring, part, nodes, pathOf };
  }

  /** Account update targets for container writes, spread over the container slots as Swift does. */
  private accountUpdateHeaders(account: string, slots: number): OutgoingHttpHeaders[] {
    const out: OutgoingHttpHeaders[] = Array.from({ length: slots }, () => ({}));
    const { part, nodes } = this.accountRing().getNodes(account);
    if (slots === 0) return out;
    nodes.forEach((a, i) => {
      const h = out[i % slots] as Record<string, string>;
      h['x-account-partition'] = String(part);
      h['x-account-host'] = h['x-account-host'] ? `${h['x-account-host']},${a.ip}:${a.port}` : `${a.ip}:${a.port}`;
      h['x-account-device'] = h['x-account-device'] ? `${h['x-account-device']},${a.device}` : a.device;
    });
    return out;
  }

  async putContainer(account: string, container: string, headers: Record<string, string> = {}): Promise<BackendResponse> {
    return this.guard(async () => {
      if (this.conf.accountAutocreate) {
        const acc = await this.accountExists(account);
        if (acc === 404) {
          const created = await this.putAccount(account);
          if (created.status >= 300) return { status: created.status >= 500 ? 503 : created.status, headers: {} };
        } else if (acc >= 300) return { status: 503, headers: {} };
      }
      const { ring, part, nodes, pathOf } = this.containerPlacement(account, container);
      const timestamp = writeTimestamp(headers);
      const base = forwardableHeaders(headers);
      base['x-timestamp'] = timestamp.internal;
      if (base['x-backend-storage-policy-index'] === undefined) {
        base['x-backend-storage-policy-index'] = String(this.policyByName(lowerGet(headers, 'x-storage-policy')));
      }
      const slotHeaders = this.accountUpdateHeaders(account, nodes.length).map((h) => ({ ...base, ...h }));
      const a = await makeRequests(this.ctx, 'Container', this.iterFor(ring, part, nodes, false), nodes.length, 'PUT', pathOf, slotHeaders);
      this.containerCache.delete(`${account}/${container}`);
      return { status: a.status, headers: a.headers };
    });
  }

  private policyByName(name: string | undefined): number {
    if (!name) return this.swiftConf.defaultPolicy.index;
    const p = this.swiftConf.policies.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (!p) throw new BackendFailure(400, `Invalid X-Storage-Policy "${name}"`);
    return p.index;
  }

  async headContainer(account: string, container: string): Promise<BackendResponse> {
    return this.guard(async () => {
      const { ring, part, nodes, pathOf } = this.containerPlacement(account, container);
      const r = await readFromNodes(this.ctx, 'Container', this.iterFor(ring, part, nodes, true), nodes.length, 'HEAD', pathOf, {});
      if (r.res) discard(r.res);
      return { status: r.status, headers: r.headers };
    });
  }

  async deleteContainer(account: string, container: string): Promise<BackendResponse> {
    return this.guard(async () => {
      const { ring, part, nodes, pathOf } = this.containerPlacement(account, container);
      const timestamp = Timestamp.now();
      const base: OutgoingHttpHeaders = { 'x-timestamp': timestamp.internal };
      const slotHeaders = this.accountUpdateHeaders(account, nodes.length).map((h) => ({ ...base, ...h }));
      this.containerCache.delete(`${account}/${container}`);
      const a = await makeRequests(this.ctx, 'Container', this.iterFor(ring, part, nodes, false), nodes.length, 'DELETE', pathOf, slotHeaders);
      return { status: a.status, headers: a.headers };
    });
  }

  async postContainer(account: string, container: string, headers: Record<string, string>): Promise<BackendResponse> {
    return this.guard(async () => {
      const { ring, part, nodes, pathOf } = this.containerPlacement(account, container);
      const base = forwardableHeaders(headers);
      base['x-timestamp'] = writeTimestamp(headers).internal;
      const slots = nodes.map(() => base);
      const a = await makeRequests(this.ctx, 'Container', this.iterFor(ring, part, nodes, false), nodes.length, 'POST', pathOf, slots);
      this.containerCache.delete(`${account}/${container}`);
      return { status: a.status, headers: a.headers };
    });
  }

  async listContainer(account: string, container: string, query: ListingQuery = {}): Promise<Listing<ObjectRow>> {
    const { ring, part, nodes } = this.containerPlacement(account, container);
    const qs = listingQuery(query);
    const pathOf = (node: PlacedNode): string => `${backendPath(node.device, part, account, container)}?${qs}`;
    return this.listing<ObjectRow>('Container', ring, part, nodes, pathOf);
  }

  // ---- accounts ----------------------------------------------------------------------------

  private accountPlacement(account: string) {
    const ring = this.accountRing();
    const { part, nodes } = ring.getNodes(account);
    const pathOf = (node: PlacedNode): string => backendPath(node.device, part, account);
    return { ring, part, nodes, pathOf };
  }

  /** Status of a (cached positive) account lookup. */
  private async accountExists(account: string): Promise<number> {
    const until = this.accountCache.get(account);
    if (until !== undefined && until > Date.now()) return 204;
    const res = await this.headAccount(account);
    if (res.status >= 200 && res.status < 300 && this.conf.recheckAccountExistenceS > 0) {
      this.accountCache.set(account, Date.now() + this.conf.recheckAccountExistenceS * 1000);
    }
    return res.status;
  }

  async putAccount(account: string, headers: Record<string, string> = {}): Promise<BackendResponse> {
    return this.guard(async () => {
      const { ring, part, nodes, pathOf } = this.accountPlacement(account);
      const base = forwardableHeaders(headers);
      base['x-timestamp'] = writeTimestamp(headers).internal;
      const a = await makeRequests(this.ctx, 'Account', this.iterFor(ring, part, nodes, false), nodes.length, 'PUT', pathOf, nodes.map(() => base));
      return { status: a.status, headers: a.headers };
    });
  }

  async headAccount(account: string): Promise<BackendResponse> {
    return this.guard(async () => {
      const { ring, part, nodes, pathOf } = this.accountPlacement(account);
      const r = await readFromNodes(this.ctx, 'Account', this.iterFor(ring, part, nodes, true), nodes.length, 'HEAD', pathOf, {});
      if (r.res) discard(r.res);
      return { status: r.status, headers: r.headers };
    });
  }

  async listAccount(account: string, query: ListingQuery = {}): Promise<Listing<ContainerRow>> {
    const { ring, part, nodes } = this.accountPlacement(account);
    const qs = listingQuery(query);
    const pathOf = (node: PlacedNode): string => `${backendPath(node.device, part, account)}?${qs}`;
    return this.listing<ContainerRow>('Account', ring, part, nodes, pathOf);
  }

  private async listing<R>(what: string, ring: RingLike, part: number, nodes: PlacedNode[], pathOf: (n: PlacedNode) => string): Promise<Listing<R>> {
    try {
      const r = await readFromNodes(this.ctx, what, this.iterFor(ring, part, nodes, true), nodes.length, 'GET', pathOf, {
        accept: 'application/json',
      });
      if (!r.res) return { status: r.status, headers: r.headers, rows: [] };
      if (r.status === 204) {
        discard(r.res);
        return { status: r.status, headers: r.headers, rows: [] };
      }
      const text = (await readBody(r.res)).toString('utf8');
      const rows = text.trim() === '' ? [] : (JSON.parse(text) as Array<R | SubdirRow>);
      return { status: r.status, headers: r.headers, rows };
    } catch (err) {
      if (err instanceof BackendFailure) return { status: err.status, headers: {}, rows: [] };
      this.logger.error({ err: (err as Error).message }, `${what} listing failed`);
      return { status: 503, headers: {}, rows: [] };
    }
  }

  async close(): Promise<void> {
    this.containerCache.clear();
    this.accountCache.clear();
  }

  /** Turns configuration problems (unknown policy, missing ring) into answers. */
  private async guard(fn: () => Promise<BackendResponse>): Promise<BackendResponse> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof BackendFailure) return { status: err.status, headers: {} };
      this.logger.error({ err: (err as Error).message }, 'proxy backend request failed');
      return { status: 503, headers: {} };
    }
  }
}

/** A failure that maps to an answer status (unknown policy, bad policy name). */
export class BackendFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'BackendFailure';
  }
}

function lowerGet(headers: Record<string, string>, name: string): string | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/** The write's timestamp: the caller's valid X-Timestamp (e.g. a copy), else now. */
function writeTimestamp(headers: Record<string, string>): Timestamp {
  const given = lowerGet(headers, 'x-timestamp');
  if (given !== undefined) {
    const ts = Timestamp.tryParse(given);
    if (!ts) throw new BackendFailure(400, `invalid X-Timestamp "${given}"`);
    return ts;
  }
  return Timestamp.now();
}

function listingQuery(q: ListingQuery): string {
  const p = new URLSearchParams({ format: 'json' });
  if (q.prefix !== undefined) p.set('prefix', q.prefix);
  if (q.delimiter !== undefined) p.set('delimiter', q.delimiter);
  if (q.marker !== undefined) p.set('marker', q.marker);
  if (q.endMarker !== undefined) p.set('end_marker', q.endMarker);
  if (q.limit !== undefined) p.set('limit', String(q.limit));
  if (q.reverse) p.set('reverse', 'true');
  return p.toString();
}

