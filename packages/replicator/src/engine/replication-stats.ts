/**
 * Counters of one replication pass, named as Swift names them so that `swift-recon`-style tools
 * read them unchanged: attempted, success, failure, hashmatch, remove, rsync (one per sync, the
 * name kept although the transport is a tar push), suffix_count, suffix_hash, suffix_sync, and
 * failure_nodes {ip: {device: n}}. A strategy may count more (the database strategy counts
 * no_change, diff, remote_merge ...): any name works with `inc`.
 */
export const OBJECT_STAT_NAMES = [
  'attempted',
  'success',
  'failure',
  'hashmatch',
  'remove',
  'rsync',
  'suffix_count',
  'suffix_hash',
  'suffix_sync',
] as const;

export type FailureNodes = Record<string, Record<string, number>>;

export interface ReplicationStatsJSON {
  [counter: string]: number | FailureNodes;
  failure_nodes: FailureNodes;
}

export class ReplicationStats {
  private readonly counters = new Map<string, number>();
  private readonly failureNodes: FailureNodes = {};

  constructor(names: readonly string[] = OBJECT_STAT_NAMES) {
    for (const n of names) this.counters.set(n, 0);
  }

  inc(name: string, n = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  get(name: string): number {
    return this.counters.get(name) ?? 0;
  }

  /** Counts one failure, attributed to the peer (or local device) that caused it. */
  failure(ip: string, device: string, n = 1): void {
    this.inc('failure', n);
    const byDev = (this.failureNodes[ip] ??= {});
    byDev[device] = (byDev[device] ?? 0) + n;
  }

  get failureNodesView(): Readonly<FailureNodes> {
    return this.failureNodes;
  }

  toJSON(): ReplicationStatsJSON {
    const out: ReplicationStatsJSON = { failure_nodes: structuredClone(this.failureNodes) };
    for (const [k, v] of this.counters) out[k] = v;
    return out;
  }
}
