/**
 * Swift's replica plan (builder.py `_build_*_replicas_by_tier`, `_build_replica_plan`,
 * `_set_parts_wanted`): how many replicas ("replicanths") of every partition each tier should
 * hold, balancing weights against "as unique as possible" dispersion within the overload.
 * Computed per tier, so its cost does not depend on the part power.
 */
import { RingValidationError } from './errors.js';
import { ROOT, TIER_DEPTH, type TierDevice, type TierTree } from './tiers.js';

const EPS = 1e-10;

/** Max replicas per tier when spreading evenly; `bound` = Math.ceil for the dispersion ceiling. */
export function maxReplicasByTier(tree: TierTree, replicas: number, bound: (x: number) => number): Float64Array {
  const out = new Float64Array(tree.count);
  const walk = (tier: number, count: number): void => {
    if (tree.level[tier] === TIER_DEPTH) count = Math.min(1, count);
    out[tier] = count;
    const kids = tree.children[tier]!;
    for (const c of kids) walk(c, bound(count / kids.length));
  };
  walk(ROOT, replicas);
  return out;
}

/** Each weighted device's share (capped at one replica per partition), summed up the tiers. */
export function weightedReplicasByTier(tree: TierTree, devs: readonly (TierDevice | null)[], replicas: number): Float64Array {
  let totalWeight = 0;
  for (const d of devs) if (d && d.weight > 0) totalWeight += d.weight;
  const per = new Map<number, number>();
  let withRoom: number[] = [];
  for (const d of devs) {
    if (!d || !(d.weight > 0)) continue;
    let w = (d.weight * replicas) / totalWeight;
    if (w < 1) withRoom.push(d.id);
    else w = 1;
    per.set(d.id, w);
  }
  for (let guard = 0; guard < 10_000; guard++) {
    let sum = 0;
    for (const v of per.values()) sum += v;
    const remaining = replicas - sum;
    if (remaining < EPS) break;
    withRoom = withRoom.filter((id) => per.get(id)! < 1);
    let roomSum = 0;
    for (const id of withRoom) roomSum += per.get(id)!;
    if (roomSum <= 0) break;
    const rel = remaining / roomSum;
    for (const id of withRoom) per.set(id, Math.min(1, per.get(id)! * (rel + 1)));
  }
  const out = new Float64Array(tree.count);
  for (const [id, w] of per) {
    out[ROOT]! += w;
    const tiers = tree.tiersOf(id);
    for (let k = 0; k < TIER_DEPTH; k++) out[tiers[k]!]! += w;
  }
  return out;
}

/** Full-dispersion replicanths per tier (weights only break ties within the even spread). */
export function wantedReplicasByTier(tree: TierTree, weighted: Float64Array, replicas: number): Float64Array {
  const dispersed = maxReplicasByTier(tree, replicas, (x) => x);
  const wanted = new Float64Array(tree.count);
  const nd = tree.numDevices;
  const place = (tier: number, replicanths: number): void => {
    if (replicanths > nd[tier]! + EPS) {
      throw new RingValidationError(`More replicanths (${replicanths}) than devices (${nd[tier]}) in tier ${tier}`);
    }
    wanted[tier] = replicanths;
    const sub = tree.children[tier]!;
    if (sub.length === 0) return;
    const toPlace = new Map<number, number>(sub.map((t) => [t, 0]));
    let remaining = replicanths;
    let spread = sub;
    let deviceLimited = false;
    for (let guard = 0; guard < 10_000; guard++) {
      let wsum = 0;
      for (const t of spread) wsum += weighted[t]!;
      const rel = remaining / wsum;
      for (const t of spread) {
        let r = toPlace.get(t)! + weighted[t]! * rel;
        const min = Math.floor(dispersed[t]!);
        const max = Math.ceil(dispersed[t]!);
        if (r < min) r = min;
        else if (r > max && !deviceLimited) r = max;
        if (r > nd[t]!) r = nd[t]!;
        toPlace.set(t, r);
      }
      let sum = 0;
      for (const v of toPlace.values()) sum += v;
      remaining = replicanths - sum;
      if (remaining < -EPS) {
        spread = sub.filter((t) => toPlace.get(t)! > Math.floor(dispersed[t]!));
      } else if (remaining > EPS) {
        spread = sub.filter((t) => nd[t]! > toPlace.get(t)! && toPlace.get(t)! < Math.ceil(dispersed[t]!));
        if (spread.length === 0) {
          deviceLimited = true;
          spread = sub.filter((t) => toPlace.get(t)! < nd[t]!);
        }
      } else {
        break;
      }
      if (spread.length === 0) break;
    }
    for (const t of sub) place(t, toPlace.get(t)!);
  };
  place(ROOT, replicas);
  return wanted;
}

export interface ReplicaPlan {
  weighted: Float64Array;
  wanted: Float64Array;
  target: Float64Array;
  min: Int32Array;
  max: Int32Array;
  /** The dispersion ceiling (ceil-based even spread) per tier, Swift's max_allowed_replicas. */
  maxAllowed: Float64Array;
  requiredOverload: number;
  effectiveOverload: number;
}

/** Largest relative increase any weighted device needs over its weight to be fully dispersed. */
export function requiredOverload(tree: TierTree, devs: readonly (TierDevice | null)[], weighted: Float64Array, wanted: Float64Array): number {
  let max = 0;
  for (const d of devs) {
    if (!d) continue;
    const tier = tree.devTier[d.id * TIER_DEPTH + 3]!;
    if (!(d.weight > 0)) {
      if (!wanted[tier]) continue;
      throw new RingValidationError(`Device ${d.id} has zero weight and should not want any replicas`);
    }
    const req = (wanted[tier]! - weighted[tier]!) / weighted[tier]!;
    if (req > max) max = req;
  }
  return max;
}

export function buildReplicaPlan(tree: TierTree, devs: readonly (TierDevice | null)[], replicas: number, overload: number): ReplicaPlan {
  const weighted = weightedReplicasByTier(tree, devs, replicas);
  const wanted = wantedReplicasByTier(tree, weighted, replicas);
  const required = requiredOverload(tree, devs, weighted, wanted);
  let target: Float64Array;
  let eff = 0;
  if (required <= 0) {
    target = wanted;
  } else {
    eff = Math.min(overload, required);
    target = new Float64Array(tree.count);
    for (let t = 0; t < tree.count; t++) {
      target[t] = ((wanted[t]! - weighted[t]!) / required) * eff + weighted[t]!;
    }
  }
  const min = new Int32Array(tree.count);
  const max = new Int32Array(tree.count);
  for (let t = 0; t < tree.count; t++) {
    min[t] = Math.floor(target[t]! + EPS);
    max[t] = Math.ceil(target[t]! - EPS);
  }
  const maxAllowed = maxReplicasByTier(tree, replicas, Math.ceil);
  return { weighted, wanted, target, min, max, maxAllowed, requiredOverload: required, effectiveOverload: eff };
}

/**
 * Part-replicas each tier should hold: `int(R * parts)` handed down the tree. Swift gives each
 * child floor(target * parts) and deals leftovers to the smallest targets first; we round each
 * child's exact share (scaled to what the parent got) down, then give the leftovers to the
 * children that rounding up hurts least relative to their share, so the planned counts sit as
 * close to the weights as integers allow (that is what balance measures). Returns the planned
 * count per tier.
 */
export function plannedPartsByTier(tree: TierTree, plan: ReplicaPlan, replicas: number, parts: number): Float64Array {
  const out = new Float64Array(tree.count);
  const place = (tier: number, n: number): void => {
    out[tier] = n;
    const sub = tree.children[tier]!;
    if (sub.length === 0) return;
    let sum = 0;
    for (const t of sub) sum += plan.target[t]! * parts;
    const scale = sum > 0 ? n / sum : 0;
    const exact = sub.map((t) => plan.target[t]! * parts * scale);
    const cap = sub.map((t) => (tree.level[t] === TIER_DEPTH ? parts : Infinity));
    const given = exact.map((e, i) => Math.min(cap[i]!, Math.floor(e + 1e-9)));
    let left = n - given.reduce((a, b) => a + b, 0);
    const order = sub
      .map((_, i) => i)
      .sort((a, b) => {
        const ra = exact[a]! > 0 ? (given[a]! + 1 - exact[a]!) / exact[a]! : Infinity;
        const rb = exact[b]! > 0 ? (given[b]! + 1 - exact[b]!) / exact[b]! : Infinity;
        return ra - rb || a - b;
      });
    for (let guard = 0; left > 0 && guard < 1_000_000; guard++) {
      let placed = false;
      for (const i of order) {
        if (left <= 0) break;
        if (given[i]! + 1 > cap[i]!) continue;
        given[i]!++;
        left--;
        placed = true;
      }
      if (!placed) break;
    }
    sub.forEach((t, i) => place(t, given[i]!));
  };
  place(ROOT, Math.trunc(replicas * parts));
  return out;
}
