/**
 * Which answer a read uses, as Swift's GETorHEAD_base decides (design §8.5): nodes are asked one
 * at a time; the first good answer (2xx, 3xx, 416, or 412 for a conditional read) not older than
 * the newest tombstone seen so far is used; 404s carrying `X-Backend-Timestamp` (tombstones) raise
 * that bar; a handoff's 404 without a timestamp says nothing (handoffs are usually empty) and is
 * ignored. With no usable answer: a tombstone seen anywhere -> 404; a quorum of primaries agreeing
 * on a client error (404 ...) -> that; otherwise 503.
 */
import { Timestamp } from '@swiftlet/common';
import { bestResponseIndex, quorumSize } from './quorum.js';

export interface ReadAnswer {
  /** HTTP status, or 503 for an error/timeout. */
  status: number;
  primary: boolean;
  /** X-Backend-Timestamp (else X-Timestamp) of the answer. */
  timestamp?: Timestamp | undefined;
  headers?: Record<string, string>;
}

export type ReadDecision = 'use' | 'next';

export function isGoodReadStatus(status: number): boolean {
  return (status >= 200 && status < 400) || status === 416 || status === 412;
}

export class ReadResolver {
  private newestTombstone: { timestamp: Timestamp; headers: Record<string, string> } | undefined;
  /** The newest version another node was seen to hold (a consistency probe's HEAD). */
  private newestVersion: Timestamp | undefined;
  private readonly statuses: number[] = [];
  private readonly answerHeaders: Record<string, string>[] = [];
  /** Good answers rejected because a newer tombstone had been seen. */
  staleSkipped = 0;

  constructor(private readonly replicas: number) {}

  offer(a: ReadAnswer): ReadDecision {
    if (isGoodReadStatus(a.status)) {
      if (a.timestamp && this.isOlderThanSeen(a.timestamp)) {
        this.staleSkipped++;
        return 'next';
      }
      return 'use';
    }
    if (a.status === 404 && a.timestamp) {
      if (!this.newestTombstone || a.timestamp.isNewerThan(this.newestTombstone.timestamp)) {
        this.newestTombstone = { timestamp: a.timestamp, headers: a.headers ?? {} };
      }
    } else if (a.status === 404 && !a.primary) {
      return 'next';
    }
    if (a.primary || a.status < 500) {
      this.statuses.push(a.status);
      this.answerHeaders.push(a.headers ?? {});
    }
    return 'next';
  }

  /** Whether a tombstone or a version newer than `t` has been seen (an answer at `t` is stale). */
  isOlderThanSeen(t: Timestamp): boolean {
    if (this.newestTombstone && t.compare(this.newestTombstone.timestamp) < 0) return true;
    return this.newestVersion !== undefined && t.compare(this.newestVersion) < 0;
  }

  /** Whether a probe found any node holding a version. */
  hasSeenVersion(): boolean {
    return this.newestVersion !== undefined;
  }

  /** A node holds the version of timestamp `t`: good answers older than it are stale from now on. */
  sawVersion(t: Timestamp): void {
    if (!this.newestVersion || t.isNewerThan(this.newestVersion)) this.newestVersion = t;
  }

  /** The answer when no node gave a usable one. */
  final(): { status: number; headers: Record<string, string> } {
    if (this.newestTombstone) {
      return { status: 404, headers: { 'x-backend-timestamp': this.newestTombstone.timestamp.internal } };
    }
    const i = bestResponseIndex(this.statuses, this.replicas, quorumSize(this.replicas));
    if (i !== undefined) return { status: this.statuses[i] as number, headers: this.answerHeaders[i] ?? {} };
    return { status: 503, headers: {} };
  }
}

/** The timestamp an answer carries: X-Backend-Timestamp, else X-Timestamp. */
export function answerTimestamp(headers: Record<string, string | string[] | undefined>): Timestamp | undefined {
  const v = headers['x-backend-timestamp'] ?? headers['x-timestamp'];
  return Timestamp.tryParse(typeof v === 'string' ? v : undefined);
}
