/**
 * Swift's error limiting (swift/common/error_limiter.py): every exception, timeout or 5xx of a node
 * counts; a node with more than `limit` errors is skipped until `interval` seconds pass without a
 * new one; a 507 (unmounted or full device) limits it at once.
 */
import type { Logger } from '@swiftlet/common';

export interface LimitedNode {
  ip: string;
  port: number;
  device: string;
}

interface ErrorRecord {
  errors: number;
  lastErrorS: number;
  /** Already logged as limited since it crossed the limit. */
  announced: boolean;
}

export type Clock = () => number;

/** Seconds since the epoch, as a fractional number. */
export const systemClock: Clock = () => Date.now() / 1000;

export function nodeKey(node: LimitedNode): string {
  return `${node.ip}:${node.port}/${node.device}`;
}

export class ErrorLimiter {
  private readonly records = new Map<string, ErrorRecord>();
  /** Times a node crossed the limit (and was announced in the log). */
  suppressions = 0;

  constructor(
    private readonly limit: number,
    private readonly intervalS: number,
    private readonly logger?: Logger,
    private readonly clock: Clock = systemClock,
  ) {}

  private current(key: string): ErrorRecord | undefined {
    const rec = this.records.get(key);
    if (rec && this.clock() - rec.lastErrorS > this.intervalS) {
      this.records.delete(key);
      return undefined;
    }
    return rec;
  }

  /** True while the node is to be skipped. */
  isLimited(node: LimitedNode): boolean {
    const rec = this.current(nodeKey(node));
    return rec !== undefined && rec.errors > this.limit;
  }

  /** One error of the node (exception, timeout, 5xx). */
  error(node: LimitedNode, why: string): void {
    const key = nodeKey(node);
    const rec = this.current(key) ?? { errors: 0, lastErrorS: 0, announced: false };
    rec.errors += 1;
    rec.lastErrorS = this.clock();
    this.records.set(key, rec);
    this.announce(key, rec, why);
  }

  /** A 507: the device is unusable; skip the node now. */
  limitNow(node: LimitedNode, why: string): void {
    const key = nodeKey(node);
    const rec = this.current(key) ?? { errors: 0, lastErrorS: 0, announced: false };
    rec.errors = this.limit + 1;
    rec.lastErrorS = this.clock();
    this.records.set(key, rec);
    this.announce(key, rec, why);
  }

  private announce(key: string, rec: ErrorRecord, why: string): void {
    if (rec.errors > this.limit && !rec.announced) {
      rec.announced = true;
      this.suppressions += 1;
      this.logger?.error(
        { node: key, errors: rec.errors, why },
        `Node will be error limited for ${this.intervalS.toFixed(2)}s: ${key}`,
      );
    }
  }

  /** Nodes skipped right now (for metrics and recon). */
  limitedNodes(): string[] {
    const out: string[] = [];
    for (const key of [...this.records.keys()]) {
      const rec = this.current(key);
      if (rec && rec.errors > this.limit) out.push(key);
    }
    return out;
  }

  /** The error count of a node inside the current interval (0 if none). */
  errorCount(node: LimitedNode): number {
    return this.current(nodeKey(node))?.errors ?? 0;
  }
}
