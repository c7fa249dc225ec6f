/**
 * One backend request with every phase bounded: `connTimeoutMs` to connect, `nodeTimeoutMs` of
 * silence afterwards (waiting for 100-continue, the headers, or body bytes either way). Uses the
 * shared keep-alive agent of @swiftlet/common. Wired synchronously, so that no event is missed
 * between phases; a request that dies on a reused keep-alive socket before the server answered
 * anything is retried once on a fresh connection (the server had closed an idle socket).
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { BackendConnectionError, BackendTimeoutError, backendAgent } from '@swiftlet/common';
import type { PlacedNode } from './node-iter.js';

export interface CallOptions {
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
  connTimeoutMs: number;
  nodeTimeoutMs: number;
  /**
   * 'expect': the caller streams a body after the server's `100 Continue` (`Expect: 100-continue`
   * is added); otherwise the request is sent at once with this (small) body or none.
   */
  body?: 'expect' | string | Uint8Array;
}

const RETRYABLE = new Set(['ECONNRESET', 'EPIPE']);
const FINAL_INSTEAD_OF_CONTINUE = new Error('final response instead of 100 Continue');

export class BackendCall {
  req!: http.ClientRequest;
  readonly startedAt = performance.now();
  /** Resolves once a 100 Continue arrived ('expect' mode only). */
  readonly continued: Promise<void>;
  /** Resolves with the response headers; rejects with the first error before them. */
  readonly response: Promise<IncomingMessage>;
  /** The first error of the exchange, also after the response arrived. */
  error: Error | undefined;
  /** Resolves with that first error (never rejects); late subscribers still see it. */
  readonly failed: Promise<Error>;
  private settleFailed!: (err: Error) => void;
  private retried = false;
  private answered = false;
  private settleContinue!: () => void;
  private failContinue!: (err: Error) => void;
  private settleResponse!: (res: IncomingMessage) => void;
  private failResponse!: (err: Error) => void;
  private readonly where: string;

  constructor(
    readonly node: PlacedNode,
    private readonly opts: CallOptions,
  ) {
    this.where = `${opts.method} ${node.ip}:${node.port}${opts.path}`;
    this.failed = new Promise<Error>((resolve) => {
      this.settleFailed = resolve;
    });
    this.continued = new Promise<void>((resolve, reject) => {
      this.settleContinue = resolve;
      this.failContinue = reject;
    });
    this.response = new Promise<IncomingMessage>((resolve, reject) => {
      this.settleResponse = resolve;
      this.failResponse = reject;
    });
    // Callers may await only one of the two; the other must not become an unhandled rejection.
    this.continued.catch(() => undefined);
    this.response.catch(() => undefined);
    this.attempt();
  }

  private attempt(): void {
    const { opts } = this;
    const headers = opts.body === 'expect' ? { ...opts.headers, Expect: '100-continue' } : opts.headers;
    const req = http.request({
      host: this.node.ip,
      port: this.node.port,
      method: opts.method,
      path: opts.path,
      headers,
      agent: backendAgent,
    });
    this.req = req;
    let connected = false;
    // Timers run before I/O in each turn of the event loop: on a busy process a connect or a byte
    // that arrived in time may not have been handled yet when its timer fires. So a timeout is
    // only declared after one I/O phase (setImmediate) has had the chance to prove it wrong.
    const connTimer = setTimeout(() => {
      setImmediate(() => {
        if (!connected && !req.destroyed) {
          req.destroy(new BackendTimeoutError(`connection timeout after ${opts.connTimeoutMs} ms: ${this.where}`));
        }
      });
    }, opts.connTimeoutMs);
    const onIdle = (): void => {
      const socket = req.socket;
      const seen = socket ? socket.bytesRead + socket.bytesWritten : 0;
      setImmediate(() => {
        if (req.destroyed) return;
        if (socket && socket.bytesRead + socket.bytesWritten !== seen) {
          req.setTimeout(opts.nodeTimeoutMs, onIdle); // there was traffic after all: start over
          return;
        }
        req.destroy(new BackendTimeoutError(`no answer within ${opts.nodeTimeoutMs} ms: ${this.where}`));
      });
    };
    req.setTimeout(opts.nodeTimeoutMs, onIdle);
    req.on('socket', (socket) => {
      if (!socket.connecting) {
        connected = true;
        clearTimeout(connTimer);
      } else {
        socket.once('connect', () => {
          connected = true;
          clearTimeout(connTimer);
        });
      }
    });
    req.on('continue', () => {
      this.answered = true;
      this.settleContinue();
    });
    req.on('response', (res) => {
      this.answered = true;
      clearTimeout(connTimer);
      res.on('error', (err) => this.fail(err));
      this.settleResponse(res);
      // A final answer instead of 100 Continue: the caller sees it through `response`. One shared
      // reason: a fresh Error per backend answer (its stack trace) showed in the GET profile.
      this.failContinue(FINAL_INSTEAD_OF_CONTINUE);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connTimer);
      if (
        !this.answered &&
        !this.retried &&
        req.reusedSocket &&
        err.code !== undefined &&
        RETRYABLE.has(err.code)
      ) {
        this.retried = true;
        this.attempt();
        return;
      }
      const wrapped =
        err instanceof BackendTimeoutError || err instanceof BackendConnectionError
          ? err
          : new BackendConnectionError(`${this.where}: ${err.message}${connected ? '' : ' (connecting)'}`, err);
      this.fail(wrapped);
    });
    if (opts.body === 'expect') req.flushHeaders();
    else req.end(opts.body);
  }

  private fail(err: Error): void {
    if (!this.error) {
      this.error = err;
      this.settleFailed(err);
    }
    this.failContinue(err);
    this.failResponse(err);
  }

  /** Milliseconds since the call started. */
  elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  /**
   * Suspends the node timeout: a PUT writer that got its 100 Continue is silent because we are
   * waiting for the other writers' connections, not because the node is.
   */
  holdTimeout(): void {
    this.req.setTimeout(0);
  }

  /** Re-arms the node timeout (idle time on the connection). */
  armTimeout(): void {
    this.req.setTimeout(this.opts.nodeTimeoutMs);
  }

  abort(): void {
    if (!this.req.destroyed) this.req.destroy();
  }
}

/** Races a promise against a timer; undefined when the timer wins. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => {
    const t = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Drains and discards a response body we do not need, so the socket returns to the pool. */
export function discard(res: IncomingMessage): void {
  res.resume();
}

/** Flattens Node's response headers into single strings (lower-case names). */
export function flatHeaders(res: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
