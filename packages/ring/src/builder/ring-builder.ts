/**
 * The ring builder: assigns every (partition, replica) slot to a device, in proportion to device
 * weights and with replicas as unique as possible across regions, zones, servers and devices,
 * within the overload. Same phases and rules as Swift's `RingBuilder.rebalance` (see
 * packages/ring/README.md), over typed arrays: one pass over the table is
 * O(parts x replicas x tier depth) with no per-partition allocation.
 */
import { randomUUID } from 'node:crypto';
import { RingData, type RingDevice } from '../ring-data.js';
import {
  BuilderArgumentError,
  DuplicateDeviceError,
  RingValidationError,
  UnknownDeviceError,
} from './errors.js';
import { Prng } from './prng.js';
import { buildReplicaPlan, plannedPartsByTier, type ReplicaPlan } from './replica-plan.js';
import { normalizeAddress, parseSearchValue, type SearchValues } from './search-value.js';
import { ROOT, TIER_DEPTH, TierTree } from './tiers.js';

/** Marks an unassigned slot in the builder's (Uint32) rows. */
export const NONE = 0xffffffff;
/** Swift shows this balance for a zero-weight device that still holds parts. */
export const MAX_BALANCE = 999.99;
/** Largest device id a v1 ring file can hold (65535 is Swift's "none"). */
export const MAX_DEV_ID = 0xfffe;
/** Rows are tracked with a 32-bit mask per partition. */
export const MAX_REPLICAS = 32;
/** Balance gather rounds per rebalance (Swift stops at 3; ours are cheap, so we try a few more). */
const MAX_BALANCE_GATHER_ROUNDS = 4;

export interface BuilderDevice extends RingDevice {
  /** Part-replicas assigned to the device. */
  parts: number;
  /** Planned minus assigned at the last rebalance (negative: overweight). */
  partsWanted: number;
}

export interface NewDevice {
  region: number;
  zone: number;
  ip: string;
  port: number;
  replicationIp?: string;
  replicationPort?: number;
  device: string;
  weight: number;
  meta?: string;
  id?: number;
}

export interface DevInfoChange {
  ip?: string;
  port?: number;
  replicationIp?: string;
  replicationPort?: number;
  device?: string;
  meta?: string;
}

export interface RebalanceOptions {
  seed?: number | bigint | string;
  /** Compute the result on a copy; the builder is left unchanged. */
  dryRun?: boolean;
  /** Balance strategy: 'best' (default) tries both and keeps the better ring. */
  strategy?: 'best' | 'direct' | 'tier';
}

export interface RebalanceResult {
  /** Slots whose device changed (new slots included), Swift's "reassigned part-replicas". */
  changedParts: number;
  balance: number;
  dispersion: number;
  removedDevs: number;
  /** Part-replica counts per device id before and after (removed devices end at 0). */
  movesByDevice: Map<number, { before: number; after: number }>;
  /** Plain-language reasons why the result differs from what weights alone ask. */
  notes: string[];
}

export interface TierDispersion {
  tier: string;
  /** Replicas of one partition the tier may hold before a replica counts as at risk. */
  max: number;
  placedParts: number;
  atRisk: number;
  pct: number;
  /** replicas[k] = partitions with exactly k replicas in the tier. */
  replicas: number[];
}

export interface DispersionReport {
  dispersion: number;
  maxDispersion: number;
  worstTier: string | null;
  tiers: TierDispersion[];
}

/** Everything a builder file holds (see builder-file.ts). */
export interface BuilderState {
  partPower: number;
  replicas: number;
  minPartHours: number;
  overload: number;
  version: number;
  id: string | null;
  devsChanged: boolean;
  devs: (BuilderDevice | null)[];
  rows: Uint32Array[] | null;
  lastPartMoves: Uint8Array;
  lastPartMovesEpoch: number;
  lastPartGatherStart: number;
  removeDevs: number[];
  dispersion: number;
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);
const fmt = (x: unknown): string => (typeof x === 'string' ? JSON.stringify(x) : String(x));

function checkDeviceName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.startsWith(' ') || name.endsWith(' ') || name.includes('/')) {
    throw new BuilderArgumentError(`Invalid device name ${fmt(name)}`);
  }
  return name;
}

function checkPort(port: unknown, what: string): number {
  if (!isInt(port) || port < 0 || port > 65535) throw new BuilderArgumentError(`Invalid ${what} ${fmt(port)}`);
  return port;
}

function checkWeight(weight: unknown): number {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
    throw new BuilderArgumentError(`Invalid weight ${fmt(weight)}: must be a number >= 0`);
  }
  return weight;
}

function checkTierNumber(x: unknown, what: string): number {
  if (!isInt(x) || x < 0) throw new BuilderArgumentError(`Invalid ${what} ${fmt(x)}: must be an integer >= 0`);
  return x;
}

function checkReplicas(r: unknown): number {
  if (typeof r !== 'number' || !Number.isFinite(r) || r < 1) {
    throw new BuilderArgumentError(`replicas must be at least 1 (was ${fmt(r)})`);
  }
  if (r > MAX_REPLICAS) throw new BuilderArgumentError(`replicas must be at most ${MAX_REPLICAS} (was ${r})`);
  return r;
}

function checkMinPartHours(h: unknown): number {
  if (!isInt(h) || h < 0) throw new BuilderArgumentError(`min_part_hours must be a non-negative integer (was ${fmt(h)})`);
  return h;
}

function checkOverload(x: unknown): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) {
    throw new BuilderArgumentError(`overload must be a non-negative number (was ${fmt(x)})`);
  }
  return x;
}

export class RingBuilder {
  partPower: number;
  replicas: number;
  minPartHours: number;
  overload = 0;
  /** Bumped by every change and every rebalance, written into the ring file. */
  version = 0;
  /** Set (uuid hex) on first save, as Swift does. */
  id: string | null = null;
  devs: (BuilderDevice | null)[] = [];
  devsChanged = false;
  dispersion = 0;
  /** Seconds since the epoch; replaceable so that tests can move time. */
  clock: () => number = () => Date.now() / 1000;

  /** rows[replica][part] = device id, NONE while unassigned; null until the first rebalance. */
  private rows: Uint32Array[] | null = null;
  private lastPartMoves: Uint8Array;
  private lastPartMovesEpoch = 0;
  private lastPartGatherStart = 0;
  private removeDevs: number[] = [];

  private constructor(partPower: number, replicas: number, minPartHours: number) {
    this.partPower = partPower;
    this.replicas = replicas;
    this.minPartHours = minPartHours;
    this.lastPartMoves = new Uint8Array(2 ** partPower);
  }

  static create(partPower: number, replicas: number, minPartHours: number): RingBuilder {
    if (!isInt(partPower) || partPower < 1 || partPower > 32) {
      throw new BuilderArgumentError(`part_power must be an integer from 1 to 32 (was ${fmt(partPower)})`);
    }
    if (partPower > 24) {
      // The table is held in memory: 2^P x replicas x 4 bytes.
      throw new BuilderArgumentError(`part_power ${partPower} is too large for an in-memory builder (at most 24)`);
    }
    return new RingBuilder(partPower, checkReplicas(replicas), checkMinPartHours(minPartHours));
  }

  static fromState(s: BuilderState): RingBuilder {
    const b = new RingBuilder(s.partPower, s.replicas, s.minPartHours);
    b.overload = s.overload;
    b.version = s.version;
    b.id = s.id;
    b.devsChanged = s.devsChanged;
    b.devs = s.devs;
    b.rows = s.rows;
    b.lastPartMoves = s.lastPartMoves;
    b.lastPartMovesEpoch = s.lastPartMovesEpoch;
    b.lastPartGatherStart = s.lastPartGatherStart;
    b.removeDevs = s.removeDevs;
    b.dispersion = s.dispersion;
    return b;
  }

  toState(): BuilderState {
    return {
      partPower: this.partPower,
      replicas: this.replicas,
      minPartHours: this.minPartHours,
      overload: this.overload,
      version: this.version,
      id: this.id,
      devsChanged: this.devsChanged,
      devs: this.devs,
      rows: this.rows,
      lastPartMoves: this.lastPartMoves,
      lastPartMovesEpoch: this.lastPartMovesEpoch,
      lastPartGatherStart: this.lastPartGatherStart,
      removeDevs: this.removeDevs,
      dispersion: this.dispersion,
    };
  }

  /** A deep copy (dry runs work on one). */
  clone(): RingBuilder {
    const s = this.toState();
    const b = RingBuilder.fromState({
      ...s,
      devs: s.devs.map((d) => (d ? { ...d } : null)),
      rows: s.rows ? s.rows.map((r) => r.slice()) : null,
      lastPartMoves: s.lastPartMoves.slice(),
      removeDevs: [...s.removeDevs],
    });
    b.clock = this.clock;
    return b;
  }

  static async load(file: string): Promise<RingBuilder> {
    const { loadBuilderFile } = await import('./builder-file.js');
    return loadBuilderFile(file);
  }

  /** Writes the builder file atomically, plus `backups/<unix-ts>.<name>` beside it. */
  async save(file: string): Promise<void> {
    if (this.id === null) this.id = randomUUID().replace(/-/g, '');
    const { saveBuilderFile } = await import('./builder-file.js');
    await saveBuilderFile(this, file);
  }

  get parts(): number {
    return 2 ** this.partPower;
  }

  get partShift(): number {
    return 32 - this.partPower;
  }

  get everRebalanced(): boolean {
    return this.rows !== null;
  }

  /** The assignment table (read-only view; rows may be replaced by the next rebalance). */
  get replica2part2devId(): readonly Uint32Array[] {
    return this.rows ?? [];
  }

  /** Device ids queued for removal at the next rebalance. */
  get pendingRemovals(): readonly number[] {
    return this.removeDevs;
  }

  // ---------------------------------------------------------------- devices

  private dev(id: number): BuilderDevice {
    const d = isInt(id) ? this.devs[id] : undefined;
    if (!d) throw new UnknownDeviceError(id);
    return d;
  }

  private refuseIfRemoving(id: number, what: string): void {
    if (this.removeDevs.includes(id)) {
      throw new BuilderArgumentError(`Can not set ${what} of dev_id ${id} because it is marked for removal`);
    }
  }

  private findCollision(ip: string, port: number, device: string, exceptId: number): BuilderDevice | undefined {
    return this.devs.find((d) => d !== null && d.id !== exceptId && d.ip === ip && d.port === port && d.device === device) ?? undefined;
  }

  /** Adds a device (no assignment until the next rebalance); returns its id (lowest free by default). */
  addDev(dev: NewDevice): number {
    if (typeof dev !== 'object' || dev === null) throw new BuilderArgumentError(`Invalid device ${fmt(dev)}`);
    const missing = (['region', 'zone', 'ip', 'port', 'device', 'weight'] as const).filter((k) => dev[k] === undefined);
    if (missing.length) throw new BuilderArgumentError(`Device is missing required key(s): ${missing.join(', ')}`);
    const region = checkTierNumber(dev.region, 'region');
    const zone = checkTierNumber(dev.zone, 'zone');
    const ip = normalizeAddress(String(dev.ip));
    const port = checkPort(dev.port, 'port');
    const replicationIp = dev.replicationIp === undefined ? ip : normalizeAddress(String(dev.replicationIp));
    const replicationPort = dev.replicationPort === undefined ? port : checkPort(dev.replicationPort, 'replication port');
    const device = checkDeviceName(dev.device);
    const weight = checkWeight(dev.weight);
    const meta = dev.meta ?? '';
    if (typeof meta !== 'string') throw new BuilderArgumentError(`Invalid meta ${fmt(meta)}`);
    let id = dev.id;
    if (id === undefined) {
      id = this.devs.indexOf(null);
      if (id < 0) id = this.devs.length;
    } else if (!isInt(id) || id < 0) {
      throw new BuilderArgumentError(`Invalid device id ${fmt(id)}`);
    } else if (this.devs[id]) {
      throw new DuplicateDeviceError(`Duplicate device id: ${id}`);
    }
    if (id > MAX_DEV_ID) throw new BuilderArgumentError(`Device id ${id} is too large (at most ${MAX_DEV_ID})`);
    const clash = this.findCollision(ip, port, device, -1);
    if (clash) {
      throw new DuplicateDeviceError(`Device ${ip}:${port}/${device} already exists (id ${clash.id})`);
    }
    while (this.devs.length <= id) this.devs.push(null);
    this.devs[id] = { id, region, zone, ip, port, replicationIp, replicationPort, device, weight, meta, parts: 0, partsWanted: 0 };
    this.devsChanged = true;
    this.version++;
    return id;
  }

  /** Sets weight 0 and queues the device; its parts are reassigned and its id freed at the next rebalance. */
  removeDev(id: number): void {
    const d = this.dev(id);
    if (this.removeDevs.includes(id)) return;
    d.weight = 0;
    this.removeDevs.push(id);
    this.devsChanged = true;
    this.version++;
  }

  setDevWeight(id: number, weight: number): void {
    const d = this.dev(id);
    this.refuseIfRemoving(id, 'weight');
    d.weight = checkWeight(weight);
    this.devsChanged = true;
    this.version++;
  }

  setDevRegion(id: number, region: number): void {
    const d = this.dev(id);
    this.refuseIfRemoving(id, 'region');
    d.region = checkTierNumber(region, 'region');
    this.devsChanged = true;
    this.version++;
  }

  setDevZone(id: number, zone: number): void {
    const d = this.dev(id);
    this.refuseIfRemoving(id, 'zone');
    d.zone = checkTierNumber(zone, 'zone');
    this.devsChanged = true;
    this.version++;
  }

  /** Changes address, name or meta without moving parts; refuses a clash with another device. */
  setDevInfo(id: number, change: DevInfoChange): void {
    const d = this.dev(id);
    const ip = change.ip === undefined ? d.ip : normalizeAddress(String(change.ip));
    const port = change.port === undefined ? d.port : checkPort(change.port, 'port');
    const device = change.device === undefined ? d.device : checkDeviceName(change.device);
    const replicationIp = change.replicationIp === undefined ? d.replicationIp : normalizeAddress(String(change.replicationIp));
    const replicationPort =
      change.replicationPort === undefined ? d.replicationPort : checkPort(change.replicationPort, 'replication port');
    if (change.meta !== undefined && typeof change.meta !== 'string') throw new BuilderArgumentError(`Invalid meta ${fmt(change.meta)}`);
    const clash = this.findCollision(ip, port, device, id);
    if (clash) throw new DuplicateDeviceError(`Device ${ip}:${port}/${device} already exists (id ${clash.id})`);
    Object.assign(d, { ip, port, device, replicationIp, replicationPort });
    if (change.meta !== undefined) d.meta = change.meta;
    this.version++;
  }

  setReplicas(replicas: number): void {
    checkReplicas(replicas);
    if (Math.trunc(this.parts * this.replicas) !== Math.trunc(this.parts * replicas)) this.devsChanged = true;
    this.replicas = replicas;
  }

  setOverload(overload: number): void {
    this.overload = checkOverload(overload);
  }

  setMinPartHours(hours: number): void {
    this.minPartHours = checkMinPartHours(hours);
  }

  /** Devices matching Swift's search-value syntax (or already parsed values). */
  searchDevs(value: string | SearchValues): BuilderDevice[] {
    const m = typeof value === 'string' ? parseSearchValue(value) : value;
    return this.devs.filter((d): d is BuilderDevice => {
      if (!d) return false;
      if (m.id !== undefined && d.id !== m.id) return false;
      if (m.region !== undefined && d.region !== m.region) return false;
      if (m.zone !== undefined && d.zone !== m.zone) return false;
      if (m.ip !== undefined && d.ip !== m.ip) return false;
      if (m.port !== undefined && d.port !== m.port) return false;
      if (m.replicationIp !== undefined && d.replicationIp !== m.replicationIp) return false;
      if (m.replicationPort !== undefined && d.replicationPort !== m.replicationPort) return false;
      if (m.device !== undefined && d.device !== m.device) return false;
      if (m.weight !== undefined && d.weight !== m.weight) return false;
      if (m.meta !== undefined && !d.meta.includes(m.meta)) return false;
      return true;
    });
  }

  /** Partitions with replicas on any of these devices, most matches first: [part, matches][]. */
  listParts(devIds: Iterable<number>): [number, number][] {
    if (!this.rows) throw new RingValidationError('The builder has not been rebalanced yet');
    const wanted = new Set(devIds);
    const counts = new Uint8Array(this.parts);
    for (const row of this.rows) {
      for (let p = 0; p < row.length; p++) if (wanted.has(row[p]!)) counts[p]!++;
    }
    const out: [number, number][] = [];
    for (let p = 0; p < counts.length; p++) if (counts[p]) out.push([p, counts[p]!]);
    out.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    return out;
  }

  // ------------------------------------------------------- time bookkeeping

  minPartSecondsLeft(): number {
    const elapsed = Math.trunc(this.clock() - this.lastPartMovesEpoch);
    return Math.max(this.minPartHours * 3600 - elapsed, 0);
  }

  pretendMinPartHoursPassed(): void {
    this.lastPartMovesEpoch = 0;
    this.lastPartMoves.fill(0xff);
  }

  private updateLastPartMoves(): void {
    const now = this.clock();
    const elapsedHours = Math.floor(Math.trunc(now - this.lastPartMovesEpoch) / 3600);
    if (elapsedHours <= 0) return;
    const lm = this.lastPartMoves;
    for (let p = 0; p < lm.length; p++) lm[p] = Math.min(lm[p]! + elapsedHours, 0xff);
    this.lastPartMovesEpoch = Math.trunc(now);
  }

  // ----------------------------------------------------- balance, dispersion

  private totalWeight(): number {
    let w = 0;
    for (const d of this.devs) if (d) w += d.weight;
    return w;
  }

  /** Per device: 100 * parts / (weight-desired parts) - 100; MAX_BALANCE for a zero-weight device with parts. */
  balancePerDev(): Map<number, number> {
    const w = this.totalWeight();
    const one = w > 0 ? (this.parts * this.replicas) / w : 0;
    const out = new Map<number, number>();
    for (const d of this.devs) {
      if (!d) continue;
      if (!d.weight) out.set(d.id, d.parts ? MAX_BALANCE : 0);
      else out.set(d.id, (100 * d.parts) / (d.weight * one) - 100);
    }
    return out;
  }

  getBalance(): number {
    let max = 0;
    for (const b of this.balancePerDev().values()) max = Math.max(max, Math.abs(b));
    return max;
  }

  private plan(): { tree: TierTree; plan: ReplicaPlan } {
    const tree = new TierTree(this.devs);
    return { tree, plan: buildReplicaPlan(tree, this.devs, this.replicas, this.overload) };
  }

  /** The overload (fraction) needed for full dispersion given the weights. */
  getRequiredOverload(): number {
    if (!this.devs.some((d) => d && d.weight > 0)) return 0;
    return this.plan().plan.requiredOverload;
  }

  /**
   * One pass over the table: Swift's dispersion (part-replicas above each tier's ceiling, worst
   * depth per partition) and, if asked, the per-tier histogram.
   */
  private measureDispersion(withGraph: boolean): { dispersion: number; tree: TierTree; maxAllowed: Float64Array; graph?: Int32Array[] } {
    const tree = new TierTree(this.devs);
    const { maxAllowed } = this.devs.some((d) => d && d.weight > 0)
      ? { maxAllowed: buildMaxAllowed(tree, this.replicas) }
      : { maxAllowed: new Float64Array(tree.count) };
    const rows = this.rows ?? [];
    const nRows = rows.length;
    const cnt = new Int32Array(tree.count);
    const stamp = new Int32Array(tree.count).fill(-1);
    const depthRisk = new Float64Array(TIER_DEPTH);
    const graph = withGraph ? Array.from({ length: tree.count }, () => new Int32Array(nRows + 1)) : undefined;
    const devTier = tree.devTier;
    let atRisk = 0;
    for (let p = 0; p < this.parts; p++) {
      for (let r = 0; r < nRows; r++) {
        const row = rows[r]!;
        if (p >= row.length) continue;
        const d = row[p]!;
        if (d === NONE || !this.devs[d]) continue;
        for (let k = 0; k < TIER_DEPTH; k++) cnt[devTier[d * TIER_DEPTH + k]!]!++;
      }
      depthRisk.fill(0);
      for (let r = 0; r < nRows; r++) {
        const row = rows[r]!;
        if (p >= row.length) continue;
        const d = row[p]!;
        if (d === NONE || !this.devs[d]) continue;
        for (let k = 0; k < TIER_DEPTH; k++) {
          const t = devTier[d * TIER_DEPTH + k]!;
          if (stamp[t] === p) continue;
          stamp[t] = p;
          const c = cnt[t]!;
          if (c > maxAllowed[t]!) depthRisk[k]! += c - maxAllowed[t]!;
          if (graph) graph[t]![c]!++;
        }
      }
      let worst = 0;
      for (let k = 0; k < TIER_DEPTH; k++) if (depthRisk[k]! > worst) worst = depthRisk[k]!;
      atRisk += worst;
      for (let r = 0; r < nRows; r++) {
        const row = rows[r]!;
        if (p >= row.length) continue;
        const d = row[p]!;
        if (d === NONE || !this.devs[d]) continue;
        for (let k = 0; k < TIER_DEPTH; k++) cnt[devTier[d * TIER_DEPTH + k]!] = 0;
      }
    }
    const dispersion = (100 * atRisk) / (this.parts * this.replicas);
    return graph ? { dispersion, tree, maxAllowed, graph } : { dispersion, tree, maxAllowed };
  }

  /** Swift's `dispersion -v` report, recomputed from the table. */
  dispersionReport(): DispersionReport {
    const { dispersion, tree, maxAllowed, graph } = this.measureDispersion(true);
    const tiers: TierDispersion[] = [];
    let maxDispersion = 0;
    let worstTier: string | null = null;
    for (let t = 1; t < tree.count; t++) {
      const hist = graph![t]!;
      hist[0] = 0;
      let placed = 0;
      for (let k = 1; k < hist.length; k++) placed += k * hist[k]!;
      if (placed === 0) continue;
      let parts = 0;
      for (let k = 1; k < hist.length; k++) parts += hist[k]!;
      hist[0] = this.parts - parts;
      const max = Math.trunc(maxAllowed[t]!);
      let atRisk = 0;
      for (let k = max + 1; k < hist.length; k++) atRisk += (k - max) * hist[k]!;
      const pct = (100 * atRisk) / placed;
      const name = tree.name(t, this.devs);
      if (pct > maxDispersion) {
        maxDispersion = pct;
        worstTier = name;
      }
      tiers.push({ tier: name, max, placedParts: placed, atRisk, pct, replicas: [...hist] });
    }
    tiers.sort((a, b) => (a.tier < b.tier ? -1 : a.tier > b.tier ? 1 : 0));
    return { dispersion, maxDispersion, worstTier, tiers };
  }

  // ------------------------------------------------------------- validate

  /** Swift's consistency checks of the table; throws RingValidationError naming what is wrong. */
  validate(): void {
    const rows = this.rows;
    if (!rows || rows.length === 0) throw new RingValidationError('The builder has no assignments; did you forget to rebalance?');
    let onDevs = 0;
    for (const d of this.devs) if (d) onDevs += d.parts;
    let inMap = 0;
    for (const r of rows) inMap += r.length;
    if (onDevs !== inMap) throw new RingValidationError(`All partitions are not double accounted for: ${onDevs} != ${inMap}`);
    for (const d of this.devs) {
      if (d && !isInt(d.port)) throw new RingValidationError(`Device ${d.id} has port ${fmt(d.port)}, which is not an integer.`);
    }
    const whole = Math.ceil(this.replicas);
    if (rows.length !== whole) throw new RingValidationError(`The table has ${rows.length} rows for ${this.replicas} replicas`);
    for (let r = 0; r < rows.length; r++) {
      const want = r < Math.floor(this.replicas) ? this.parts : Math.trunc(this.parts * (this.replicas % 1));
      if (rows[r]!.length !== want) {
        throw new RingValidationError(`The partition assignments of replica ${r} have ${rows[r]!.length} entries, expected ${want}`);
      }
    }
    const counts = new Map<number, number>();
    for (let p = 0; p < this.parts; p++) {
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r]!;
        if (p >= row.length) break;
        const d = row[p]!;
        if (d === NONE || !this.devs[d]) throw new RingValidationError(`Partition ${p}, replica ${r} was not allocated to a device.`);
        counts.set(d, (counts.get(d) ?? 0) + 1);
        for (let q = 0; q < r; q++) {
          if (rows[q]![p] === d) {
            const ids = rows.filter((x) => p < x.length).map((x) => x[p]);
            throw new RingValidationError(`The partition ${p} has been assigned to duplicate devices [${ids.join(', ')}]`);
          }
        }
      }
    }
    for (const d of this.devs) {
      if (d && (counts.get(d.id) ?? 0) !== d.parts) {
        throw new RingValidationError(`Device ${d.id} counts ${d.parts} parts but holds ${counts.get(d.id) ?? 0}`);
      }
    }
  }

  // ------------------------------------------------------------- ring data

  /** The ring file's content: devices without builder fields, rows as Uint16 (v1) when ids allow. */
  getRingData(): RingData {
    const devs: (RingDevice | null)[] = this.devs.map((d) =>
      d
        ? {
            id: d.id, region: d.region, zone: d.zone, ip: d.ip, port: d.port,
            replicationIp: d.replicationIp, replicationPort: d.replicationPort,
            device: d.device, weight: d.weight, meta: d.meta,
          }
        : null,
    );
    const rows = this.rows ?? [];
    const small = this.devs.length <= 0xffff;
    const table = small ? rows.map((r) => Uint16Array.from(r)) : rows.map((r) => r.slice());
    return new RingData({
      devs,
      replica2part2devId: table as Uint16Array[] | Uint32Array[],
      partShift: this.partShift,
      version: this.version,
    });
  }

  // ------------------------------------------------------------- rebalance

  /**
   * Rebalances (Swift's phases; see the class comment). Two balance strategies are tried on
   * copies, with and without moves between overweight and underweight failure domains through
   * even devices, and the better ring (balance, then dispersion, then fewer moves) is kept.
   */
  rebalance(opts: RebalanceOptions = {}): RebalanceResult {
    const seed = opts.seed ?? new Prng().nextUint32();
    const strategy = opts.strategy ?? 'best';
    if (strategy !== 'best') {
      const t = opts.dryRun ? this.clone() : this;
      return new Rebalance(t, seed, strategy === 'tier').run();
    }
    const a = this.clone();
    const ra = new Rebalance(a, seed, false).run();
    // Nothing left to gain: balanced to within 0.1 % and fully dispersed, or no weighted device
    // is above its plan (the other variant only adds moves out of overweight failure domains).
    const noneOver = a.devs.every((d) => !d || !(d.weight > 0) || d.partsWanted >= 0);
    if ((ra.balance < 0.1 && ra.dispersion === 0) || noneOver) {
      if (!opts.dryRun) this.adopt(a);
      return ra;
    }
    const c = this.clone();
    const rc = new Rebalance(c, seed, true).run();
    // Better balance wins, then better dispersion, then fewer moves; differences under 0.05
    // (a fraction of one part-replica on a device of 2000) count as equal.
    const cmp = (x: number, y: number): number => (Math.abs(x - y) < 0.05 ? 0 : x - y);
    const order = cmp(rc.balance, ra.balance) || cmp(rc.dispersion, ra.dispersion) || rc.changedParts - ra.changedParts;
    const useC = order < 0;
    const [chosen, result] = useC ? [c, rc] : [a, ra];
    if (!opts.dryRun) this.adopt(chosen);
    return result;
  }

  private adopt(o: RingBuilder): void {
    const s = o.toState();
    this.version = s.version;
    this.devsChanged = s.devsChanged;
    this.devs = s.devs;
    this.rows = s.rows;
    this.lastPartMoves = s.lastPartMoves;
    this.lastPartMovesEpoch = s.lastPartMovesEpoch;
    this.lastPartGatherStart = s.lastPartGatherStart;
    this.removeDevs = s.removeDevs;
    this.dispersion = s.dispersion;
  }

  /** @internal used by the rebalance pass. */
  _internals(): {
    rows: Uint32Array[] | null;
    setRows(rows: Uint32Array[]): void;
    lastPartMoves: Uint8Array;
    updateLastPartMoves(): void;
    gatherStart: number;
    setGatherStart(s: number): void;
    removeDevs: number[];
    measureDispersion(): number;
  } {
    return {
      rows: this.rows,
      setRows: (rows) => {
        this.rows = rows;
      },
      lastPartMoves: this.lastPartMoves,
      updateLastPartMoves: () => this.updateLastPartMoves(),
      gatherStart: this.lastPartGatherStart,
      setGatherStart: (s) => {
        this.lastPartGatherStart = s;
      },
      removeDevs: this.removeDevs,
      measureDispersion: () => this.measureDispersion(false).dispersion,
    };
  }
}

function buildMaxAllowed(tree: TierTree, replicas: number): Float64Array {
  const out = new Float64Array(tree.count);
  const walk = (tier: number, count: number): void => {
    if (tree.level[tier] === TIER_DEPTH) count = Math.min(1, count);
    out[tier] = count;
    const kids = tree.children[tier]!;
    for (const c of kids) walk(c, Math.ceil(count / kids.length));
  };
  walk(ROOT, replicas);
  return out;
}

/** One rebalance of one builder (Swift's phases, typed arrays). */
class Rebalance {
  private readonly b: RingBuilder;
  private readonly rng: Prng;
  private readonly parts: number;
  private tree!: TierTree;
  private plan!: ReplicaPlan;
  private rows!: Uint32Array[];
  private lastMoves!: Uint8Array;
  private moved!: Uint8Array;
  /** Per partition: bit r set = slot (part, r) gathered for reassignment. */
  private gmask!: Uint32Array;
  private glist!: Uint32Array;
  private glen = 0;
  /** Scratch replica counts per tier for the partition at hand. */
  private cnt!: Int32Array;
  private pw!: Float64Array;
  private devParts!: Int32Array;
  private readonly tierMoves: boolean;

  constructor(b: RingBuilder, seed: RebalanceOptions['seed'], tierMoves: boolean) {
    this.b = b;
    this.tierMoves = tierMoves;
    this.rng = new Prng(seed);
    this.parts = b.parts;
  }

  run(): RebalanceResult {
    const b = this.b;
    const internals = b._internals();
    let weighted = 0;
    for (const d of b.devs) if (d && d.weight > 0) weighted++;
    if (weighted < b.replicas) {
      throw new RingValidationError(`Replica count of ${b.replicas} requires more than ${weighted} devices`);
    }
    const oldRows = (internals.rows ?? []).map((r) => r.slice());
    const before = new Map<number, number>();
    for (const d of b.devs) if (d) before.set(d.id, d.parts);

    internals.updateLastPartMoves();
    this.lastMoves = internals.lastPartMoves;
    this.moved = new Uint8Array(this.parts);
    this.tree = new TierTree(b.devs);
    this.plan = buildReplicaPlan(this.tree, b.devs, b.replicas, b.overload);
    this.cnt = new Int32Array(this.tree.count);
    this.gmask = new Uint32Array(this.parts);
    this.glist = new Uint32Array(this.parts);
    this.setPartsWanted();

    this.rows = internals.rows ?? [];
    this.adjustReplicaCount();
    internals.setRows(this.rows);
    const removedDevs = this.gatherFromRemovedDevices(internals.removeDevs);
    this.gatherForDispersion();

    // Slots that must move (new, removed, undispersed) are placed as Swift places them.
    if (this.glen > 0) {
      this.rng.shuffle(this.glist, this.glen);
      this.reassign();
    }
    // Balance: move single replicas straight from overweight to underweight devices where the
    // replica plan allows, so a change moves about as many part-replicas as the new weights ask.
    let gatherStart = internals.gatherStart;
    const quarter = Math.floor(this.parts / 4);
    gatherStart = (gatherStart + quarter + this.rng.randint(0, Math.floor(this.parts / 2))) % this.parts;
    // Then level: a device far below its share may take a replica from one that is merely even,
    // when no overweight device holding a fitting partition is left. Repeat while it helps.
    for (let round = 0; round < MAX_BALANCE_GATHER_ROUNDS; round++) {
      const moved = this.moveForBalance(gatherStart, false) + this.moveForBalance(gatherStart, true);
      if (moved === 0) break;
      gatherStart = (gatherStart + quarter + this.rng.randint(0, Math.floor(this.parts / 2))) % this.parts;
    }
    // Overweight devices whose partitions fit no underweight device: pass through a third device.
    if (this.worstPlanError() > 0.005 && this.twoHop(gatherStart) > 0) {
      this.moveForBalance(gatherStart, false);
      this.moveForBalance(gatherStart, true);
    }
    internals.setGatherStart(gatherStart);
    this.writeBack();

    b.devsChanged = false;
    b.dispersion = internals.measureDispersion();
    b.version++;

    let changed = 0;
    for (let r = 0; r < this.rows.length; r++) {
      const row = this.rows[r]!;
      const old = oldRows[r];
      for (let p = 0; p < row.length; p++) if (!old || p >= old.length || old[p] !== row[p]) changed++;
    }
    const movesByDevice = new Map<number, { before: number; after: number }>();
    for (const [id, n] of before) movesByDevice.set(id, { before: n, after: b.devs[id]?.parts ?? 0 });
    for (const d of b.devs) if (d && !movesByDevice.has(d.id)) movesByDevice.set(d.id, { before: 0, after: d.parts });
    return {
      changedParts: changed,
      balance: b.getBalance(),
      dispersion: b.dispersion,
      removedDevs,
      movesByDevice,
      notes: this.notes(),
    };
  }

  private canMove(p: number): boolean {
    return this.lastMoves[p]! >= this.b.minPartHours && this.moved[p] === 0;
  }

  private markMoved(p: number): void {
    this.lastMoves[p] = 0;
    this.moved[p] = 1;
  }

  private gather(p: number, r: number): void {
    if (this.gmask[p] === 0) this.glist[this.glen++] = p;
    this.gmask[p]! |= 1 << r;
  }

  /** Takes slot (p, r) off its device. */
  private unassign(p: number, r: number): number {
    const row = this.rows[r]!;
    const d = row[p]!;
    row[p] = NONE;
    this.pw[d]!++;
    this.devParts[d]!--;
    this.gather(p, r);
    return d;
  }

  /** Adds (sign 1) or removes (-1) the replica counts of partition p to the scratch tier counts. */
  private count(p: number, sign: number): void {
    const devTier = this.tree.devTier;
    const rows = this.rows;
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      if (p >= row.length) continue;
      const d = row[p]!;
      if (d === NONE) continue;
      const base = d * TIER_DEPTH;
      for (let k = 0; k < TIER_DEPTH; k++) this.cnt[devTier[base + k]!]! += sign;
    }
  }

  private setPartsWanted(): void {
    const b = this.b;
    const n = b.devs.length;
    this.pw = new Float64Array(n);
    this.devParts = new Int32Array(n);
    const planned = plannedPartsByTier(this.tree, this.plan, b.replicas, this.parts);
    for (const d of b.devs) {
      if (!d) continue;
      this.devParts[d.id] = d.parts;
      this.pw[d.id] = d.weight > 0 ? planned[this.tree.devTier[d.id * TIER_DEPTH + 3]!]! - d.parts : -this.parts * b.replicas;
    }
  }

  private adjustReplicaCount(): void {
    const b = this.b;
    const whole = Math.floor(b.replicas);
    const frac = b.replicas - whole;
    const lengths = new Array<number>(whole).fill(this.parts);
    if (frac > 0) lengths.push(Math.trunc(this.parts * frac));
    const rows = this.rows;
    for (const row of rows.slice(lengths.length)) {
      for (const d of row) this.dropSlot(d);
    }
    rows.length = Math.min(rows.length, lengths.length);
    for (let r = 0; r < lengths.length; r++) {
      const want = lengths[r]!;
      const row = rows[r];
      if (!row) {
        rows.push(new Uint32Array(want).fill(NONE));
        for (let p = 0; p < want; p++) this.gather(p, r);
      } else if (row.length < want) {
        const grown = new Uint32Array(want).fill(NONE);
        grown.set(row);
        rows[r] = grown;
        for (let p = row.length; p < want; p++) this.gather(p, r);
      } else if (row.length > want) {
        for (let p = want; p < row.length; p++) this.dropSlot(row[p]!);
        rows[r] = row.slice(0, want);
      }
    }
  }

  private dropSlot(d: number): void {
    if (d === NONE) return;
    this.devParts[d]!--;
    this.pw[d]!++;
  }

  private gatherFromRemovedDevices(removeDevs: number[]): number {
    const b = this.b;
    if (removeDevs.length) {
      const gone = new Uint8Array(b.devs.length);
      for (const id of removeDevs) gone[id] = 1;
      for (let r = 0; r < this.rows.length; r++) {
        const row = this.rows[r]!;
        for (let p = 0; p < row.length; p++) {
          const d = row[p]!;
          if (d !== NONE && gone[d]) {
            this.unassign(p, r);
            this.markMoved(p);
          }
        }
      }
    }
    const removed = removeDevs.length;
    for (const id of removeDevs) {
      b.devs[id] = null;
      this.pw[id] = 0;
      this.devParts[id] = 0;
    }
    removeDevs.length = 0;
    while (b.devs.length && b.devs[b.devs.length - 1] === null) b.devs.pop();
    return removed;
  }

  private gatherForDispersion(): void {
    const { max } = this.plan;
    const devTier = this.tree.devTier;
    const cnt = this.cnt;
    const cand: number[] = [];
    for (let p = 0; p < this.parts; p++) {
      if (!this.canMove(p)) continue;
      this.count(p, 1);
      cand.length = 0;
      for (let r = 0; r < this.rows.length; r++) {
        const row = this.rows[r]!;
        if (p >= row.length) continue;
        const d = row[p]!;
        if (d === NONE) continue;
        const base = d * TIER_DEPTH;
        for (let k = 0; k < TIER_DEPTH; k++) {
          const t = devTier[base + k]!;
          if (cnt[t]! > max[t]!) {
            cand.push(r);
            break;
          }
        }
      }
      if (cand.length) {
        if (cand.length > 1) cand.sort((x, y) => this.pw[this.rows[x]![p]!]! - this.pw[this.rows[y]![p]!]!);
        for (const r of cand) {
          const d = this.rows[r]![p]!;
          const base = d * TIER_DEPTH;
          // A device holding two replicas of a partition (legacy rings) sheds them regardless.
          if (!this.canMove(p) && !(cnt[devTier[base + 3]!]! > 1)) continue;
          for (let k = 0; k < TIER_DEPTH; k++) cnt[devTier[base + k]!]!--;
          this.unassign(p, r);
          this.markMoved(p);
        }
      }
      this.count(p, -1);
    }
  }

  /** Partitions held back by min_part_hours (not moved in this rebalance) that sit on an overweight device. */
  private stuckForTime(): number {
    let n = 0;
    for (let p = 0; p < this.parts; p++) {
      if (this.moved[p] !== 0 || this.lastMoves[p]! >= this.b.minPartHours) continue;
      for (let r = 0; r < this.rows.length; r++) {
        const row = this.rows[r]!;
        if (p < row.length && row[p] !== NONE && this.pw[row[p]!]! < 0) {
          n++;
          break;
        }
      }
    }
    return n;
  }

  private anyOverweight(): boolean {
    for (const d of this.b.devs) if (d && this.pw[d.id]! < 0 && this.devParts[d.id]! > 0) return true;
    return false;
  }

  /** Largest |parts_wanted| relative to a device's planned parts (two-hop moves cost double; skip them below 0.5 %). */
  private worstPlanError(): number {
    let worst = 0;
    for (const d of this.b.devs) {
      if (!d || !(d.weight > 0)) continue;
      const planned = Math.max(1, this.devParts[d.id]! + this.pw[d.id]!);
      worst = Math.max(worst, Math.abs(this.pw[d.id]!) / planned);
    }
    return worst;
  }

  private anyUnderweight(): boolean {
    for (const d of this.b.devs) if (d && d.weight > 0 && this.pw[d.id]! > 0) return true;
    return false;
  }

  /**
   * One pass from `start`: for each movable partition with a replica on an overweight device,
   * move the replica of the most overweight such device to the underweight device with the most
   * room among the failure domains still below their plan max (depth-first, roomiest first).
   */
  private moveForBalance(start: number, level: boolean): number {
    const b = this.b;
    const tree = this.tree;
    const devTier = tree.devTier;
    const { min, max } = this.plan;
    const cnt = this.cnt;
    const pw = this.pw;
    // Relative want of each device (positive: below its share). Leveling measures against the
    // plan's exact (fractional) share, the figure balance is reported against, rather than the
    // rounded parts_wanted.
    const planned = new Float64Array(pw.length).fill(1);
    const devParts = this.devParts;
    for (const d of b.devs) {
      if (!d || !(d.weight > 0)) continue;
      planned[d.id] = level
        ? Math.max(1e-9, this.plan.target[devTier[d.id * TIER_DEPTH + 3]!]! * this.parts)
        : Math.max(1, devParts[d.id]! + pw[d.id]!);
    }
    const want = level ? (d: number): number => planned[d]! - devParts[d]! : (d: number): number => pw[d]!;
    const rel = (d: number): number => want(d) / planned[d]!;
    // Leveling: a source ends at rel + 1/planned, a destination at rel - 1/planned; a move must
    // leave the destination still wanting more (relatively) than the source then does.
    let minSrc = Infinity;
    let maxDst = -Infinity;
    for (const d of b.devs) {
      if (!d || !(d.weight > 0)) continue;
      minSrc = Math.min(minSrc, rel(d.id) + 1 / planned[d.id]!);
      if (want(d.id) > 0) maxDst = Math.max(maxDst, rel(d.id) - 1 / planned[d.id]!);
    }
    // Leveling serves the neediest half of the range first (later rounds take the rest): any
    // source below the midpoint then improves on any destination above it, so no search is wasted.
    const mid = (minSrc + maxDst) / 2;
    const needy = (d: number): boolean => want(d) > 0 && (!level || rel(d) - 1 / planned[d]! > mid);
    const avail = new Float64Array(tree.count);
    let over = 0;
    for (const d of b.devs) {
      if (!d) continue;
      if (pw[d.id]! < 0 && this.devParts[d.id]! > 0) over++;
      if (!(d.weight > 0) || !needy(d.id)) continue;
      const w = want(d.id);
      avail[ROOT]! += w;
      for (let k = 0; k < TIER_DEPTH; k++) avail[devTier[d.id * TIER_DEPTH + k]!]! += w;
    }
    if ((over === 0 && !level) || avail[ROOT]! <= 0) return 0;
    if (level && !(maxDst > minSrc)) return 0;
    const dropFromAvail = (d: number): void => {
      const w = want(d);
      if (w <= 0) return;
      avail[ROOT]! -= w;
      for (let k = 0; k < TIER_DEPTH; k++) avail[devTier[d * TIER_DEPTH + k]!]! -= w;
    };
    let moves = 0;
    const children = tree.children;
    const tierDev = tree.tierDev;
    // Tiers already found full in the current search (gen numbers one search).
    const mark = new Int32Array(tree.count);
    let gen = 0;
    // Depth-first search for a device with room, roomiest child first; -1 if none.
    const find = (tier: number): number => {
      if (tree.level[tier] === TIER_DEPTH) return tierDev[tier]!;
      const kids = children[tier]!;
      for (;;) {
        let best = -1;
        let bestAvail = 0;
        for (let j = 0; j < kids.length; j++) {
          const c = kids[j]!;
          // A failure domain still below its plan min comes first (it improves dispersion too).
          if (mark[c] !== gen && cnt[c]! < max[c]! && avail[c]! > 0) {
            const score = avail[c]! + (cnt[c]! < min[c]! ? 1e12 : 0);
            if (score > bestAvail) {
              best = j;
              bestAvail = score;
            }
          }
        }
        if (best < 0) return -1;
        const found = find(kids[best]!);
        if (found >= 0) return found;
        mark[kids[best]!] = gen;
      }
    };
    // Net want per tier (sum of parts_wanted of its weighted devices): a tier can be overweight as
    // a whole while none of the devices holding a fitting partition is; then a replica moves out of
    // the tier from an even device (which the next pass refills from inside the tier).
    const tierNet = new Float64Array(tree.count);
    for (const d of b.devs) {
      if (!d || !(d.weight > 0)) continue;
      for (let k = 0; k < TIER_DEPTH - 1; k++) tierNet[devTier[d.id * TIER_DEPTH + k]!]! += pw[d.id]!;
    }
    const overTierLevel = (d: number): number => {
      for (let k = 0; k < TIER_DEPTH - 1; k++) if (tierNet[devTier[d * TIER_DEPTH + k]!]! < 0) return k;
      return -1;
    };
    // A device with room in a sibling tier of src's overweight tier at depth k+1 (that tier net > 0).
    const findOutside = (src: number, k: number): number => {
      const own = devTier[src * TIER_DEPTH + k]!;
      const parentTier = k === 0 ? ROOT : devTier[src * TIER_DEPTH + k - 1]!;
      const kids = children[parentTier]!;
      for (;;) {
        let best = -1;
        let bestAvail = 0;
        for (let j = 0; j < kids.length; j++) {
          const c = kids[j]!;
          if (c !== own && mark[c] !== gen && tierNet[c]! > 0 && cnt[c]! < max[c]! && avail[c]! > bestAvail) {
            best = j;
            bestAvail = avail[c]!;
          }
        }
        if (best < 0) return -1;
        const found = find(kids[best]!);
        if (found >= 0) return found;
        mark[kids[best]!] = gen;
      }
    };
    const cand: number[] = [];
    for (let off = 0; off < this.parts && avail[ROOT]! > 0; off++) {
      const p = (start + off) % this.parts;
      if (!this.canMove(p)) continue;
      cand.length = 0;
      for (let r = 0; r < this.rows.length; r++) {
        const row = this.rows[r]!;
        if (p >= row.length || row[p] === NONE) continue;
        const d = row[p]!;
        if (level ? b.devs[d]!.weight > 0 && rel(d) + 1 / planned[d]! < mid : pw[d]! < 0 || (this.tierMoves && overTierLevel(d) >= 0)) cand.push(r);
      }
      if (!cand.length) continue;
      // Insertion sort (a handful of replicas): most overweight source first.
      for (let i = 1; i < cand.length; i++) {
        const r = cand[i]!;
        const key = level ? rel(this.rows[r]![p]!) : pw[this.rows[r]![p]!]!;
        let j = i - 1;
        while (j >= 0 && (level ? rel(this.rows[cand[j]!]![p]!) : pw[this.rows[cand[j]!]![p]!]!) > key) {
          cand[j + 1] = cand[j]!;
          j--;
        }
        cand[j + 1] = r;
      }
      this.count(p, 1);
      for (const r of cand) {
        const src = this.rows[r]![p]!;
        const sb = src * TIER_DEPTH;
        for (let k = 0; k < TIER_DEPTH; k++) cnt[devTier[sb + k]!]!--;
        let dst = -1;
        gen++;
        if (level || pw[src]! < 0) dst = find(ROOT);
        else {
          const k = overTierLevel(src);
          if (k >= 0) dst = findOutside(src, k);
        }
        if (dst < 0 || (level && !(rel(dst) - 1 / planned[dst]! > rel(src) + 1 / planned[src]!))) {
          for (let k = 0; k < TIER_DEPTH; k++) cnt[devTier[sb + k]!]!++;
          continue;
        }
        const db = dst * TIER_DEPTH;
        for (let k = 0; k < TIER_DEPTH; k++) {
          const t = devTier[db + k]!;
          cnt[t]!++;
          avail[t]!--;
        }
        avail[ROOT]!--;
        for (let k = 0; k < TIER_DEPTH - 1; k++) {
          tierNet[devTier[sb + k]!]!++;
          tierNet[devTier[db + k]!]!--;
        }
        pw[src]!++;
        this.devParts[src]!--;
        pw[dst]!--;
        this.devParts[dst]!++;
        if (level && !needy(dst)) dropFromAvail(dst);
        this.rows[r]![p] = dst;
        this.markMoved(p);
        moves++;
        break;
      }
      this.count(p, -1);
    }
    return moves;
  }

  /**
   * Two-hop moves: a replica on an overweight device S goes to a device X that can take it, and X
   * passes another movable partition of its own to an underweight device Y (X keeps its count).
   * Costs two moves per part-replica of balance, so it runs only after direct moves are exhausted,
   * and within a work budget.
   */
  private twoHop(start: number): number {
    const b = this.b;
    const tree = this.tree;
    const devTier = tree.devTier;
    const { min, max } = this.plan;
    const pw = this.pw;
    const nDev = b.devs.length;
    const avail = new Float64Array(tree.count);
    let over = 0;
    for (const d of b.devs) {
      if (!d) continue;
      if (pw[d.id]! < 0 && this.devParts[d.id]! > 0) over++;
      if (!(d.weight > 0) || pw[d.id]! <= 0) continue;
      avail[ROOT]! += pw[d.id]!;
      for (let k = 0; k < TIER_DEPTH; k++) avail[devTier[d.id * TIER_DEPTH + k]!]! += pw[d.id]!;
    }
    if (over === 0 || avail[ROOT]! <= 0) return 0;
    // Movable (partition, row) slots per device, CSR.
    const off = new Int32Array(nDev + 1);
    for (const row of this.rows) for (let p = 0; p < row.length; p++) if (row[p] !== NONE && this.canMove(p)) off[row[p]! + 1]!++;
    for (let d = 0; d < nDev; d++) off[d + 1]! += off[d]!;
    const fill = off.slice(0, nDev);
    const slots = new Uint32Array(off[nDev]!);
    this.rows.forEach((row, r) => {
      for (let p = 0; p < row.length; p++) if (row[p] !== NONE && this.canMove(p)) slots[fill[row[p]!]!++] = p * MAX_REPLICAS + r;
    });
    const cnt = this.cnt;
    const cnt2 = new Int32Array(tree.count);
    const children = tree.children;
    const tierDev = tree.tierDev;
    let budget = 64 * this.parts;
    const mark = new Int32Array(tree.count);
    let gen = 0;
    const find = (tier: number, c: Int32Array): number => {
      if (tree.level[tier] === TIER_DEPTH) return tierDev[tier]!;
      const kids = children[tier]!;
      for (;;) {
        let best = -1;
        let bestScore = 0;
        for (let j = 0; j < kids.length; j++) {
          const k = kids[j]!;
          if (mark[k] !== gen && c[k]! < max[k]! && avail[k]! > 0) {
            const score = avail[k]! + (c[k]! < min[k]! ? 1e12 : 0);
            if (score > bestScore) {
              best = j;
              bestScore = score;
            }
          }
        }
        if (best < 0) return -1;
        const found = find(kids[best]!, c);
        if (found >= 0) return found;
        mark[kids[best]!] = gen;
      }
    };
    const count2 = (p: number, sign: number): void => {
      for (let i = 0; i < this.rows.length; i++) {
        const row = this.rows[i]!;
        if (p >= row.length || row[p] === NONE) continue;
        const base = row[p]! * TIER_DEPTH;
        for (let k = 0; k < TIER_DEPTH; k++) cnt2[devTier[base + k]!]! += sign;
      }
    };
    /** A slot of X that can go straight to an underweight device: [slot, dst], or null. */
    const noPass = new Uint8Array(nDev);
    let noPassChanged = false;
    const passOf = (x: number, exceptPart: number): [number, number] | null => {
      if (noPass[x]) return null;
      // A device with a slot that fits elsewhere usually shows one among its first few.
      for (let i = off[x]!; i < Math.min(off[x + 1]!, off[x]! + 128) && budget > 0; i++) {
        const q = Math.floor(slots[i]! / MAX_REPLICAS);
        const r = slots[i]! % MAX_REPLICAS;
        if (q === exceptPart || !this.canMove(q) || this.rows[r]![q] !== x) continue;
        budget--;
        count2(q, 1);
        for (let k = 0; k < TIER_DEPTH; k++) cnt2[devTier[x * TIER_DEPTH + k]!]!--;
        gen++;
        const y = find(ROOT, cnt2);
        for (let k = 0; k < TIER_DEPTH; k++) cnt2[devTier[x * TIER_DEPTH + k]!]!++;
        count2(q, -1);
        if (y >= 0) return [slots[i]!, y];
      }
      if (budget > 0) {
        // Devices unable to pass anything on now never will (needs only shrink): drop them.
        noPass[x] = 1;
        noPassChanged = true;
      }
      return null;
    };
    let weighted: number[] = [];
    for (const d of b.devs) if (d && d.weight > 0) weighted.push(d.id);
    const moveSlot = (p: number, r: number, from: number, to: number): void => {
      this.rows[r]![p] = to;
      pw[from]!++;
      this.devParts[from]!--;
      pw[to]!--;
      this.devParts[to]!++;
    };
    let moves = 0;
    for (let o = 0; o < this.parts && budget > 0 && avail[ROOT]! > 0; o++) {
      const p = (start + o) % this.parts;
      if (!this.canMove(p)) continue;
      let srcRow = -1;
      for (let r = 0; r < this.rows.length; r++) {
        const row = this.rows[r]!;
        if (p < row.length && row[p] !== NONE && pw[row[p]!]! < 0 && (srcRow < 0 || pw[row[p]!]! < pw[this.rows[srcRow]![p]!]!)) srcRow = r;
      }
      if (srcRow < 0) continue;
      const s = this.rows[srcRow]![p]!;
      this.count(p, 1);
      for (let k = 0; k < TIER_DEPTH; k++) cnt[devTier[s * TIER_DEPTH + k]!]!--;
      let moved = false;
      if (noPassChanged) {
        weighted = weighted.filter((x) => !noPass[x]);
        noPassChanged = false;
      }
      for (const x of weighted) {
        if (x === s || noPass[x]) continue;
        let fits = true;
        for (let k = 0; k < TIER_DEPTH; k++) {
          const t = devTier[x * TIER_DEPTH + k]!;
          if (cnt[t]! >= max[t]!) {
            fits = false;
            break;
          }
        }
        if (!fits) continue;
        budget--;
        const pass = passOf(x, p);
        if (!pass) continue;
        const [slot, y] = pass;
        const q = Math.floor(slot / MAX_REPLICAS);
        for (let k = 0; k < TIER_DEPTH; k++) cnt[devTier[s * TIER_DEPTH + k]!]!++;
        this.count(p, -1);
        moved = true;
        moveSlot(p, srcRow, s, x);
        moveSlot(q, slot % MAX_REPLICAS, x, y);
        avail[ROOT]!--;
        for (let k = 0; k < TIER_DEPTH; k++) avail[devTier[y * TIER_DEPTH + k]!]!--;
        this.markMoved(p);
        this.markMoved(q);
        moves += 2;
        break;
      }
      if (!moved) {
        for (let k = 0; k < TIER_DEPTH; k++) cnt[devTier[s * TIER_DEPTH + k]!]!++;
        this.count(p, -1);
      }
    }
    return moves;
  }

  /** Places every gathered slot: down the tree, the roomiest child still below its plan max. */
  private reassign(): void {
    const b = this.b;
    const tree = this.tree;
    const devTier = tree.devTier;
    const { min, max } = this.plan;
    const cnt = this.cnt;
    const pw = this.pw;
    // Device order: (parts_wanted, random, id), as Swift's sort_key; a tier ranks by its last device.
    const avail = new Float64Array(tree.count);
    const rank = new Int32Array(tree.count).fill(-1);
    const weightedDevs: { id: number; w: number; rnd: number }[] = [];
    for (const d of b.devs) {
      if (!d) continue;
      const rnd = this.rng.randint(0, 0xffff);
      const w = Math.max(pw[d.id]!, 0);
      for (let k = 0; k < TIER_DEPTH; k++) avail[devTier[d.id * TIER_DEPTH + k]!]! += w;
      if (d.weight > 0) weightedDevs.push({ id: d.id, w: pw[d.id]!, rnd });
    }
    weightedDevs.sort((x, y) => x.w - y.w || x.rnd - y.rnd || x.id - y.id);
    weightedDevs.forEach((d, i) => {
      for (let k = 0; k < TIER_DEPTH; k++) rank[devTier[d.id * TIER_DEPTH + k]!] = i;
    });
    // Children in rank order, flattened for the hot loop.
    const childOff = new Int32Array(tree.count + 1);
    const kidsAll: number[] = [];
    for (let t = 0; t < tree.count; t++) {
      childOff[t] = kidsAll.length;
      const kids = [...tree.children[t]!].sort((x, y) => rank[x]! - rank[y]!);
      for (const c of kids) kidsAll.push(c);
    }
    childOff[tree.count] = kidsAll.length;
    const kids = Int32Array.from(kidsAll);
    const tierDev = tree.tierDev;

    for (let i = 0; i < this.glen; i++) {
      const p = this.glist[i]!;
      this.lastMoves[p] = 0;
      this.count(p, 1);
      let mask = this.gmask[p]!;
      for (let r = 0; mask !== 0; r++, mask >>>= 1) {
        if ((mask & 1) === 0) continue;
        let tier = ROOT;
        for (let depth = 0; depth < TIER_DEPTH; depth++) {
          let best = -1;
          let bestAvail = -Infinity;
          let ties = 0;
          for (let j = childOff[tier]!, e = childOff[tier + 1]!; j < e; j++) {
            const c = kids[j]!;
            if (cnt[c]! < max[c]!) {
              const score = avail[c]! + (cnt[c]! < min[c]! ? 1e12 : 0);
              if (score > bestAvail) {
                best = c;
                bestAvail = score;
                ties = 1;
              } else if (score === bestAvail && this.rng.randint(0, ties++) === 0) {
                // A random pick among equally roomy domains: a fixed order would line up which
                // partitions share which devices, and later moves would need long chains.
                best = c;
              }
            }
          }
          if (best < 0) throw new RingValidationError(`No home for partition ${p} replica ${r}: every failure domain is at its replica limit`);
          tier = best;
        }
        const d = tierDev[tier]!;
        pw[d]!--;
        this.devParts[d]!++;
        const base = d * TIER_DEPTH;
        for (let k = 0; k < TIER_DEPTH; k++) {
          const t = devTier[base + k]!;
          avail[t]!--;
          cnt[t]!++;
        }
        this.rows[r]![p] = d;
      }
      this.count(p, -1);
      this.gmask[p] = 0;
    }
    this.glen = 0;
  }

  private writeBack(): void {
    for (const d of this.b.devs) {
      if (!d) continue;
      d.parts = this.devParts[d.id]!;
      d.partsWanted = this.pw[d.id]!;
    }
  }

  private notes(): string[] {
    const b = this.b;
    const notes: string[] = [];
    const plan = this.plan;
    const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
    if (plan.requiredOverload > 0) {
      if (b.overload < plan.requiredOverload) {
        notes.push(
          `Full dispersion needs overload ${pct(plan.requiredOverload)} but overload is ${pct(b.overload)}: ` +
            `weights win, so some partitions keep more than one replica in a failure domain (set_overload to change this).`,
        );
      } else {
        notes.push(`Devices in small failure domains take up to ${pct(plan.requiredOverload)} more than their weight asks, to keep replicas apart.`);
      }
    }
    let totalWeight = 0;
    for (const d of b.devs) if (d) totalWeight += d.weight;
    const one = (this.parts * b.replicas) / totalWeight;
    const tier = (id: number): number => this.tree.devTier[id * TIER_DEPTH + 3]!;
    const limited: string[] = [];
    for (const d of b.devs) {
      if (!d || !(d.weight > 0)) continue;
      const byWeight = d.weight * one;
      if ((d.weight * b.replicas) / totalWeight > 1 + 1e-9) {
        limited.push(`d${d.id} weighs more than one replica of every partition; it can hold at most ${this.parts} part-replicas`);
      } else if (plan.target[tier(d.id)]! * this.parts < byWeight - 1 && d.parts < byWeight - 1) {
        limited.push(`d${d.id} gets ${d.parts} part-replicas, less than the ${byWeight.toFixed(1)} its weight asks, to keep replicas apart`);
      }
    }
    notes.push(...limited.slice(0, 10));
    if (limited.length > 10) notes.push(`... and ${limited.length - 10} more devices limited the same way`);
    const stuck = this.anyOverweight() ? this.stuckForTime() : 0;
    if (stuck > 0) {
      notes.push(
        `${stuck} partitions on overweight devices moved less than min_part_hours (${b.minPartHours}) ago; ` +
          `rebalance again in ${b.minPartSecondsLeft()} s to finish.`,
      );
    }
    return notes;
  }
}
