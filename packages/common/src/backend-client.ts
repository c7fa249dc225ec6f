/**
 * HTTP client for backend calls between Swiftlet servers (proxy -> storage nodes, object server ->
 * container servers, replicator -> peers). Every call is bounded: `connTimeoutMs` until the
 * connection is up, `nodeTimeoutMs` for any silence afterwards (no byte sent or received).
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { StoreError } from './errors.js';

export interface BackendNode {
  ip: string;
  port: number;
}

export interface BackendRequestOptions {
  method: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  connTimeoutMs?: number;
  nodeTimeoutMs?: number;
  signal?: AbortSignal;
}

/** Keep-alive pool shared by all backend calls of a process. */
export const backendAgent = new http.Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1000 });

export class BackendTimeoutError extends StoreError {
  constructor(message: string) {
    super(504, 'BackendTimeout', message, { expose: false });
  }
}

export class BackendConnectionError extends StoreError {
  constructor(message: string, cause: unknown) {
    super(503, 'BackendConnection', message, { cause, expose: false });
  }
}

/** Encodes each segment of a backend path as Swift does (everything but `/` and unreserved). */
export function backendPath(...segments: (string | number)[]): string {
  return '/' + segments.map((s) => encodeURIComponent(String(s)).replace(/%2F/gi, '/')).join('/');
}

/**
 * Starts a request and resolves with the ClientRequest once the socket is connected, so that the
 * caller can stream a body into it. Rejects with BackendConnectionError / BackendTimeoutError.
 */
export function backendConnect(node: BackendNode, opts: BackendRequestOptions): Promise<http.ClientRequest> {
  const connTimeoutMs = opts.connTimeoutMs ?? 500;
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: node.ip,
      port: node.port,
      method: opts.method,
      path: opts.path,
      headers: opts.headers,
      agent: backendAgent,
      signal: opts.signal,
    });
    let connected = false;
    const where = `${opts.method} ${node.ip}:${node.port}${opts.path}`;
    const connTimer = setTimeout(() => {
      req.destroy(new BackendTimeoutError(`connection timeout after ${connTimeoutMs} ms: ${where}`));
    }, connTimeoutMs);
    req.setTimeout(nodeTimeoutMs, () => {
      req.destroy(new BackendTimeoutError(`no answer within ${nodeTimeoutMs} ms: ${where}`));
    });
    const onConnected = (): void => {
      if (connected) return;
      connected = true;
      clearTimeout(connTimer);
      resolve(req);
    };
    req.on('socket', (socket) => {
      // A reused keep-alive socket is already connected.
      if (!socket.connecting) onConnected();
      else socket.once('connect', onConnected);
    });
    req.on('error', (err) => {
      clearTimeout(connTimer);
      if (!connected) {
        reject(err instanceof StoreError ? err : new BackendConnectionError(`${where}: ${err.message}`, err));
      }
    });
  });
}

/** Waits for the response of a started request, keeping the node timeout for the headers. */
export function backendResponse(req: http.ClientRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
}

/** A whole backend call with an optional small body; the response body is left to the caller. */
export async function backendRequest(
  node: BackendNode,
  opts: BackendRequestOptions & { body?: string | Uint8Array },
): Promise<IncomingMessage> {
  const req = await backendConnect(node, opts);
  const res = backendResponse(req);
  req.end(opts.body);
  return res;
}

/** Reads a (small) response body whole, at most `limitBytes`. */
export async function readBody(res: IncomingMessage, limitBytes = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > limitBytes) {
      res.destroy();
      throw new StoreError(502, 'BackendBodyTooLarge', `backend answer larger than ${limitBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
