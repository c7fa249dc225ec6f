/**
 * What every backend request of one proxy shares: settings, the error limiter, node timings,
 * counters and the logger, plus the bookkeeping of one node's answer (error limiting, timing).
 */
import type { Logger } from '@swiftlet/common';
import type { OutgoingHttpHeaders } from 'node:http';
import { BackendCall } from './backend-call.js';
import type { ProxyBackendConfig } from './config.js';
import type { ErrorLimiter } from './error-limiter.js';
import { nodeKey } from './error-limiter.js';
import type { NodeTimings, PlacedNode } from './node-iter.js';

/** Counters for metrics; monotonic since start. */
export interface BackendMetrics {
  /** Backend calls that failed: connection errors, timeouts, 5xx answers. */
  backendErrors: number;
  /** Backend timeouts (connect or node timeout), a subset of backendErrors. */
  backendTimeouts: number;
  /** 507 answers (device unusable). */
  insufficientStorage: number;
  /** Writes (PUT/DELETE/POST) that went to a handoff in place of a primary. */
  handoffWrites: number;
  /** Reads answered by a handoff. */
  handoffReads: number;
  /** Writes that failed for lack of a quorum (503). */
  quorumFailures: number;
  /** GET bodies resumed from another replica after a failure mid-stream. */
  readResumes: number;
  /** GET bodies cut because no replica could continue them. */
  readAborts: number;
  /** Object reads whose first good answer a consistency probe showed stale (consistent_reads). */
  staleReadsAvoided: number;
}

export function newMetrics(): BackendMetrics {
  return {
    backendErrors: 0,
    backendTimeouts: 0,
    insufficientStorage: 0,
    handoffWrites: 0,
    handoffReads: 0,
    quorumFailures: 0,
    readResumes: 0,
    readAborts: 0,
    staleReadsAvoided: 0,
  };
}

export class BackendContext {
  constructor(
    readonly conf: Required<ProxyBackendConfig>,
    readonly limiter: ErrorLimiter,
    readonly timings: NodeTimings,
    readonly metrics: BackendMetrics,
    readonly logger: Logger,
  ) {}

  get connTimeoutMs(): number {
    return this.conf.connTimeoutS * 1000;
  }

  get nodeTimeoutMs(): number {
    return this.conf.nodeTimeoutS * 1000;
  }

  open(node: PlacedNode, method: string, path: string, headers: OutgoingHttpHeaders, body?: 'expect' | string | Uint8Array): BackendCall {
    const opts = { method, path, headers, connTimeoutMs: this.connTimeoutMs, nodeTimeoutMs: this.nodeTimeoutMs };
    return new BackendCall(node, body === undefined ? opts : { ...opts, body });
  }

  /** A failed call (exception or timeout): counts against the node. */
  noteError(node: PlacedNode, err: unknown, what: string): void {
    this.metrics.backendErrors++;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof Error && err.name === 'BackendTimeoutError') this.metrics.backendTimeouts++;
    this.limiter.error(node, message);
    this.logger.warn({ node: nodeKey(node), err: message }, `ERROR with ${what} server ${nodeKey(node)}: ${message}`);
  }

  /** Bookkeeping of an answer's status: 507 limits the node at once, 5xx counts as an error. */
  noteStatus(node: PlacedNode, status: number, what: string): void {
    if (status === 507) {
      this.metrics.insufficientStorage++;
      this.limiter.limitNow(node, '507 Insufficient Storage');
      this.logger.warn({ node: nodeKey(node), status }, `${what} server ${nodeKey(node)} answered 507`);
    } else if (status >= 500) {
      this.metrics.backendErrors++;
      this.limiter.error(node, `status ${status}`);
      this.logger.warn({ node: nodeKey(node), status }, `ERROR ${status} from ${what} server ${nodeKey(node)}`);
    }
  }
}
