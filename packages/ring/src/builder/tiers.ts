/**
 * The failure-domain tree (Swift's tiers): root, region, zone, server (keyed by ip only, as
 * Swift does), device. Tiers get small integer ids so that the per-partition passes of a
 * rebalance count replicas in a typed array instead of hashing tuples.
 */
import type { RingDevice } from '../ring-data.js';

export const TIER_DEPTH = 4;
export const ROOT = 0;

/** Python-style comparison of the tier tuples' last element, so child order matches Swift's `sorted()`. */
function cmpKey(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

export interface TierDevice {
  id: number;
  region: number;
  zone: number;
  ip: string;
  weight: number;
}

export class TierTree {
  /** Number of tiers, root included (id 0). */
  readonly count: number;
  /** Depth of each tier: 0 root, 1 region, 2 zone, 3 server, 4 device. */
  readonly level: Uint8Array;
  readonly parent: Int32Array;
  /** The tuple element that names the tier within its parent (region, zone, ip or device id). */
  readonly key: (number | string)[];
  /** devTier[id * 4 + depth - 1] = tier id of that device at depth 1..4; -1 for holes. */
  readonly devTier: Int32Array;
  /** For device tiers: the device id; otherwise -1. */
  readonly tierDev: Int32Array;
  /** Children among weighted devices only (Swift's build_tier_tree of weight > 0), sorted like Swift. */
  readonly children: number[][];
  /** Weighted devices under each tier. */
  readonly numDevices: Int32Array;

  constructor(devs: readonly (TierDevice | null)[]) {
    const index = new Map<string, number>();
    const level: number[] = [0];
    const parent: number[] = [-1];
    const key: (number | string)[] = [''];
    const devTier = new Int32Array(devs.length * TIER_DEPTH).fill(-1);
    const tierOf = (k: string, p: number, lvl: number, name: number | string): number => {
      let t = index.get(k);
      if (t === undefined) {
        t = level.length;
        index.set(k, t);
        level.push(lvl);
        parent.push(p);
        key.push(name);
      }
      return t;
    };
    for (const d of devs) {
      if (!d) continue;
      const r = tierOf(`${d.region}`, ROOT, 1, d.region);
      const z = tierOf(`${d.region}\u0000${d.zone}`, r, 2, d.zone);
      const s = tierOf(`${d.region}\u0000${d.zone}\u0000${d.ip}`, z, 3, d.ip);
      const v = tierOf(`${d.region}\u0000${d.zone}\u0000${d.ip}\u0000#${d.id}`, s, 4, d.id);
      devTier.set([r, z, s, v], d.id * TIER_DEPTH);
    }
    this.count = level.length;
    this.level = Uint8Array.from(level);
    this.parent = Int32Array.from(parent);
    this.key = key;
    this.devTier = devTier;
    this.tierDev = new Int32Array(this.count).fill(-1);
    this.numDevices = new Int32Array(this.count);
    const childSets: Set<number>[] = Array.from({ length: this.count }, () => new Set<number>());
    for (const d of devs) {
      if (!d) continue;
      const base = d.id * TIER_DEPTH;
      this.tierDev[devTier[base + 3]!] = d.id;
      if (!(d.weight > 0)) continue;
      this.numDevices[ROOT]!++;
      let p = ROOT;
      for (let k = 0; k < TIER_DEPTH; k++) {
        const t = devTier[base + k]!;
        this.numDevices[t]!++;
        childSets[p]!.add(t);
        p = t;
      }
    }
    this.children = childSets.map((s) => [...s].sort((a, b) => cmpKey(key[a]!, key[b]!)));
  }

  /** Tier ids of a device, depth 1..4. */
  tiersOf(devId: number): Int32Array {
    return this.devTier.subarray(devId * TIER_DEPTH, devId * TIER_DEPTH + TIER_DEPTH);
  }

  /** Swift's tier names: r1, r1z2, r1z2-10.0.0.1, r1z2-10.0.0.1/sdb1. */
  name(tier: number, devs: readonly (RingDevice | null)[]): string {
    const chain: number[] = [];
    for (let t = tier; t > ROOT; t = this.parent[t]!) chain.unshift(t);
    let out = '';
    for (const t of chain) {
      const lvl = this.level[t]!;
      const k = this.key[t]!;
      if (lvl === 1) out += `r${k}`;
      else if (lvl === 2) out += `z${k}`;
      else if (lvl === 3) out += String(k).includes(':') ? `-[${k}]` : `-${k}`;
      else out += `/${devs[k as number]?.device ?? `IDd${k}`}`;
    }
    return out;
  }
}
