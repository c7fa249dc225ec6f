/**
 * The order in which a request visits nodes (Swift's NodeIter): primaries first, sorted by
 * `sorting_method`, then handoffs in the ring's order; error-limited nodes are skipped; at most
 * `requestNodeCount` usable nodes in all. One iterator may be shared by several concurrent
 * writers (PUT), each pulling the next node when its own failed.
 */
import type { Clock, ErrorLimiter } from './error-limiter.js';
import { systemClock } from './error-limiter.js';

export interface PlacedNode {
  ip: string;
  port: number;
  device: string;
  id?: number;
  index?: number;
  handoffIndex?: number;
}

/** What a visited node is, for the caller's bookkeeping. */
export interface VisitedNode<N extends PlacedNode> {
  node: N;
  primary: boolean;
}

/** Response times per node (ip:port), for sorting_method = timing; entries expire. */
export class NodeTimings {
  private readonly timings = new Map<string, { seconds: number; atS: number }>();

  constructor(
    private readonly expiryS: number,
    private readonly clock: Clock = systemClock,
  ) {}

  record(node: PlacedNode, seconds: number): void {
    this.timings.set(`${node.ip}:${node.port}`, { seconds, atS: this.clock() });
  }

  /** Measured seconds, or -1 when unknown or expired (unknown nodes go first, as in Swift). */
  get(node: PlacedNode): number {
    const key = `${node.ip}:${node.port}`;
    const t = this.timings.get(key);
    if (!t) return -1;
    if (this.clock() - t.atS > this.expiryS) {
      this.timings.delete(key);
      return -1;
    }
    return t.seconds;
  }
}

export type SortingMethod = 'shuffle' | 'timing';

/** Primaries in read order. Returns a new array. */
export function sortPrimaries<N extends PlacedNode>(
  primaries: readonly N[],
  method: SortingMethod,
  timings?: NodeTimings,
  random: () => number = Math.random,
): N[] {
  const out = primaries.slice();
  // Shuffle first in both modes, so that nodes with equal timing share the load (Swift does the same).
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i] as N;
    out[i] = out[j] as N;
    out[j] = t;
  }
  if (method === 'timing' && timings) {
    const keyed = out.map((n) => ({ n, t: timings.get(n) }));
    keyed.sort((a, b) => a.t - b.t);
    return keyed.map((k) => k.n);
  }
  return out;
}

export class NodeIter<N extends PlacedNode> implements Iterator<VisitedNode<N>> {
  private primaryPos = 0;
  private yielded = 0;
  /** Handoffs handed out so far (for metrics). */
  handoffsUsed = 0;
  /** Primaries skipped because they were error-limited. */
  readonly skippedPrimaries: N[] = [];

  constructor(
    private readonly primaries: readonly N[],
    private readonly handoffs: Iterator<N>,
    private readonly limiter: ErrorLimiter,
    private readonly maxNodes: number,
  ) {}

  next(): IteratorResult<VisitedNode<N>> {
    if (this.yielded >= this.maxNodes) return { done: true, value: undefined };
    while (this.primaryPos < this.primaries.length) {
      const node = this.primaries[this.primaryPos++] as N;
      if (this.limiter.isLimited(node)) {
        this.skippedPrimaries.push(node);
        continue;
      }
      this.yielded++;
      return { done: false, value: { node, primary: true } };
    }
    for (;;) {
      const h = this.handoffs.next();
      if (h.done) return { done: true, value: undefined };
      if (this.limiter.isLimited(h.value)) continue;
      this.yielded++;
      this.handoffsUsed++;
      return { done: false, value: { node: h.value, primary: false } };
    }
  }

  [Symbol.iterator](): this {
    return this;
  }
}
