/**
 * Quorum arithmetic of Swift's proxy (swift/proxy/controllers/base.py): a replicated write needs
 * ceil(R/2) agreeing answers (2 of 3, 1 of 2, 2 of 4), not a majority.
 */

/** Swift's quorum_size: (n + 1) // 2. */
export function quorumSize(n: number): number {
  return Math.floor((Math.floor(n) + 1) / 2);
}

/** Status class: 1 for 1xx, 2 for 2xx ... */
function statusClass(status: number): number {
  return Math.floor(status / 100);
}

/** At least `quorum` statuses in one class among 1xx..4xx (5xx never makes a quorum). */
export function haveQuorum(statuses: readonly number[], nodeCount: number, quorum = quorumSize(nodeCount)): boolean {
  const counts = new Map<number, number>();
  for (const s of statuses) {
    const c = statusClass(s);
    if (c < 1 || c > 4) continue;
    const n = (counts.get(c) ?? 0) + 1;
    if (n >= quorum) return true;
    counts.set(c, n);
  }
  return false;
}

/**
 * Swift's best_response: the statuses are padded with 503 up to `nodeCount`; the first class among
 * 2xx, 3xx, 4xx with at least a quorum of members wins, and within it the highest status code (its
 * index is returned so the caller can use that answer's headers); no such class -> undefined (503).
 */
export function bestResponseIndex(
  statuses: readonly number[],
  nodeCount: number,
  quorum = quorumSize(nodeCount),
): number | undefined {
  for (const cls of [2, 3, 4]) {
    let members = 0;
    let best = -1;
    for (let i = 0; i < statuses.length; i++) {
      const s = statuses[i] as number;
      if (statusClass(s) !== cls) continue;
      members++;
      if (best < 0 || s > (statuses[best] as number)) best = i;
    }
    if (members >= quorum && best >= 0) return best;
  }
  return undefined;
}
