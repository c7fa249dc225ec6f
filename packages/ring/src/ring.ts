/**
 * The ring as servers use it: partition of a name, its primary nodes, its handoffs in Swift's exact
 * order, and a cheap periodic reload when the file changes. Lookups run per request on the proxy,
 * so everything that depends only on the ring (failure-domain ids per device, node objects) is
 * computed once per load.
 */
import { createHash, hash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  SwiftConf,
  createLogger,
  hashPath,
  policySuffix,
  type HashPathSalt,
  type Logger,
} from '@swiftlet/common';
import { RingData, RingFileError, type RingDevice, type RingNode, type RingTable } from './ring-data.js';

export const DEFAULT_RELOAD_TIME_S = 15;

export interface RingOptions {
  /** Seconds between checks of the file's mtime (Swift's reload_time, default 15). */
  reloadTimeS?: number;
  /** The hash path salt; needed by getPart/getNodes only. */
  salt?: HashPathSalt;
  logger?: Logger;
  /** Milliseconds clock, for tests. */
  now?: () => number;
}

/** Everything derived from one loaded file; swapped as a whole on reload. */
interface RingState {
  data: RingData;
  rows: RingTable;
  devs: readonly (RingDevice | null)[];
  partShift: number;
  partCount: number;
  replicaCount: number;
  md5: string;
  mtimeMs: number;
  /** Per device id: dense ids of its region, (region, zone) and (region, zone, ip); -1 for holes. */
  regionOf: Int32Array;
  zoneOf: Int32Array;
  ipOf: Int32Array;
  regionKeys: number;
  zoneKeys: number;
  ipKeys: number;
  /** Counts over devices that have at least one partition assigned (Swift's _update_bookkeeping). */
  numRegions: number;
  numZones: number;
  numIps: number;
  numAssignedDevs: number;
  /** Frozen primary node objects, [devId * maxIndex + index], made on first use. */
  primaryNodes: (RingNode | undefined)[];
  maxIndex: number;
}

let defaultLogger: Logger | undefined;

export class Ring {
  readonly file: string;
  private readonly reloadMs: number;
  private readonly salt: HashPathSalt | undefined;
  private readonly logger: Logger | undefined;
  private readonly now: () => number;
  private state: RingState;
  private nextCheck: number;

  private constructor(file: string, opts: RingOptions) {
    this.file = file;
    this.reloadMs = (opts.reloadTimeS ?? DEFAULT_RELOAD_TIME_S) * 1000;
    this.salt = opts.salt;
    this.logger = opts.logger;
    this.now = opts.now ?? Date.now;
    this.state = loadState(file);
    this.nextCheck = this.now() + this.reloadMs;
  }

  /** Loads a ring file now; throws RingFileError (naming the file) if it is missing or bad. */
  static load(file: string, opts: RingOptions = {}): Ring {
    return new Ring(file, opts);
  }

  /** `<swiftDir>/<kind>[-N].ring.gz` with the salt of `<swiftDir>/swift.conf`. */
  static forKind(
    swiftDir: string,
    kind: 'object' | 'container' | 'account',
    policyIndex = 0,
    opts: Omit<RingOptions, 'salt'> = {},
  ): Ring {
    const salt = SwiftConf.load(swiftDir).salt;
    const name = kind === 'object' ? `object${policySuffix(policyIndex)}` : kind;
    return new Ring(join(swiftDir, `${name}.ring.gz`), { ...opts, salt });
  }

  get partPower(): number {
    return 32 - this.state.partShift;
  }

  get partCount(): number {
    return this.state.partCount;
  }

  get replicaCount(): number {
    return this.state.replicaCount;
  }

  get devices(): readonly (RingDevice | null)[] {
    this.maybeReload();
    return this.state.devs;
  }

  get md5(): string {
    return this.state.md5;
  }

  get version(): number | undefined {
    return this.state.data.version;
  }

  get nextPartPower(): number | undefined {
    this.maybeReload();
    return this.state.data.nextPartPower;
  }

  /** The ring data last loaded (shared; do not modify). */
  get data(): RingData {
    return this.state.data;
  }

  /** Number of devices with at least one partition (those that can be primaries or handoffs). */
  get assignedDeviceCount(): number {
    return this.state.numAssignedDevs;
  }

  getPart(account: string, container?: string, object?: string): number {
    if (!this.salt) throw new Error(`${this.file}: ring loaded without a hash path salt; cannot hash names`);
    return this.getPartForDigest(fastHashPath(this.salt, account, container, object));
  }

  getPartForDigest(digest: Buffer): number {
    this.maybeReload();
    const shift = this.state.partShift;
    // `>>> 32` is a no-op in JS, so part power 0 needs its own case.
    return shift >= 32 ? 0 : digest.readUInt32BE(0) >>> shift;
  }

  getPartNodes(part: number): RingNode[] {
    this.maybeReload();
    return partNodes(this.state, part);
  }

  getNodes(account: string, container?: string, object?: string): { part: number; nodes: RingNode[] } {
    const part = this.getPart(account, container, object);
    return { part, nodes: partNodes(this.state, part) };
  }

  /**
   * Handoffs in Swift's order: devices in a new region first, then a new zone, a new server, then
   * any unused device, walking the assignment table from an md5(str(part))-derived start. Only
   * devices that own partitions are candidates; primaries and repeats never come out.
   */
  *getMoreNodes(part: number): Generator<RingNode> {
    this.maybeReload();
    // A reload while the caller iterates must not mix two rings.
    const st = this.state;
    const rows = st.rows;
    const nrows = rows.length;
    const primaries = partNodes(st, part);
    const used = new Uint8Array(st.devs.length);
    const seenRegion = new Uint8Array(st.regionKeys);
    const seenZone = new Uint8Array(st.zoneKeys);
    const seenIp = new Uint8Array(st.ipKeys);
    let usedCount = 0;
    let regions = 0;
    let zones = 0;
    let ips = 0;
    for (const n of primaries) {
      used[n.id] = 1;
      usedCount++;
      const r = st.regionOf[n.id] as number;
      const z = st.zoneOf[n.id] as number;
      const i = st.ipOf[n.id] as number;
      if (!seenRegion[r]) ((seenRegion[r] = 1), regions++);
      if (!seenZone[z]) ((seenZone[z] = 1), zones++);
      if (!seenIp[i]) ((seenIp[i] = 1), ips++);
    }
    const parts = st.partCount;
    const start = handoffStart(part, st.partShift);
    const inc = Math.floor(parts / 65536) || 1;
    // Swift: chain(range(start, parts, inc), range(inc - ((parts - start) % inc), start, inc)).
    const from0 = start;
    const to0 = parts;
    const from1 = inc - ((parts - start) % inc);
    const to1 = start;
    let handoffIndex = 0;

    for (let pass = 1; pass <= 4; pass++) {
      let done =
        pass === 1
          ? regions === st.numRegions
          : pass === 2
            ? zones === st.numZones
            : pass === 3
              ? ips === st.numIps
              : usedCount === st.numAssignedDevs;
      for (let seg = 0; seg < 2 && !done; seg++) {
        const to = seg === 0 ? to0 : to1;
        for (let hp = seg === 0 ? from0 : from1; hp < to; hp += inc) {
          if (done) break;
          for (let r = 0; r < nrows; r++) {
            const row = rows[r] as Uint16Array;
            if (hp >= row.length) continue;
            const id = row[hp] as number;
            if (used[id]) continue;
            const rg = st.regionOf[id] as number;
            const zn = st.zoneOf[id] as number;
            const ip = st.ipOf[id] as number;
            if (pass === 1) {
              if (seenRegion[rg]) continue;
              seenRegion[rg] = 1;
              regions++;
              if (!seenZone[zn]) ((seenZone[zn] = 1), zones++);
              if (!seenIp[ip]) ((seenIp[ip] = 1), ips++);
            } else if (pass === 2) {
              if (seenZone[zn]) continue;
              seenZone[zn] = 1;
              zones++;
              if (!seenIp[ip]) ((seenIp[ip] = 1), ips++);
            } else if (pass === 3) {
              if (seenIp[ip]) continue;
              seenIp[ip] = 1;
              ips++;
            }
            used[id] = 1;
            usedCount++;
            // Swift's handoff dicts carry no index; ours say where they stand in the whole node sequence.
            yield Object.freeze({
              ...(st.devs[id] as RingDevice),
              index: primaries.length + handoffIndex,
              handoffIndex: handoffIndex++,
            });
            if (
              pass === 1
                ? regions === st.numRegions
                : pass === 2
                  ? zones === st.numZones
                  : pass === 3
                    ? ips === st.numIps
                    : usedCount === st.numAssignedDevs
            ) {
              done = true;
              break;
            }
          }
        }
      }
    }
  }

  /**
   * Re-reads the file if reload_time passed and its mtime changed. A bad new file is logged and
   * the ring in memory stays in use (and the file is tried again after the next interval).
   * `force` skips the interval (the mtime check stays).
   */
  reloadIfChanged(force = false): boolean {
    const now = this.now();
    if (!force && now <= this.nextCheck) return false;
    this.nextCheck = now + this.reloadMs;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.file).mtimeMs;
    } catch (err) {
      this.log().warn({ file: this.file, err: (err as Error).message }, 'ring file unreadable; keeping the ring in memory');
      return false;
    }
    if (mtimeMs === this.state.mtimeMs) return false;
    try {
      this.state = loadState(this.file);
    } catch (err) {
      this.log().warn({ file: this.file, err: (err as Error).message }, 'new ring file is bad; keeping the ring in memory');
      return false;
    }
    this.log().info({ file: this.file, md5: this.state.md5, version: this.state.data.version }, 'ring reloaded');
    return true;
  }

  private maybeReload(): void {
    if (this.now() > this.nextCheck) this.reloadIfChanged();
  }

  private log(): Logger {
    if (this.logger) return this.logger;
    defaultLogger ??= createLogger('ring');
    return defaultLogger;
  }
}

/**
 * The raw digest of common's hashPath (same bytes: UTF-8 of prefix + path + suffix), with the
 * one-shot crypto.hash, about 2.5x faster than a Hash object on the proxy's per-request path.
 */
export function fastHashPath(salt: HashPathSalt, account: string, container?: string, object?: string): Buffer {
  if (object && !container) return hashPath(salt, account, container, object).digest; // throws
  let path = `${salt.prefix}/${account}`;
  if (container) path += `/${container}`;
  if (container && object) path += `/${object}`;
  return hash('md5', path + salt.suffix, 'buffer');
}

/** md5(str(part)) top bits: where the handoff scan of a partition starts. */
function handoffStart(part: number, partShift: number): number {
  if (partShift >= 32) return 0;
  const d = createHash('md5').update(String(part), 'latin1').digest();
  return d.readUInt32BE(0) >>> partShift;
}

function partNodes(st: RingState, part: number): RingNode[] {
  const rows = st.rows;
  const out: RingNode[] = [];
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as Uint16Array;
    if (part >= row.length) continue;
    const id = row[part] as number;
    let dup = false;
    for (let k = 0; k < out.length; k++) {
      if ((out[k] as RingNode).id === id) {
        dup = true;
        break;
      }
    }
    if (dup) continue;
    const index = out.length;
    const slot = id * st.maxIndex + index;
    let node = st.primaryNodes[slot];
    if (node === undefined) {
      node = Object.freeze({ ...(st.devs[id] as RingDevice), index });
      st.primaryNodes[slot] = node;
    }
    out.push(node);
  }
  return out;
}

function loadState(file: string): RingState {
  let buf: Buffer;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
    buf = readFileSync(file);
  } catch (err) {
    throw new RingFileError(file, `cannot read ring file: ${(err as Error).message}`, { cause: err });
  }
  const data = RingData.fromBuffer(buf, file);
  if (data.replica2part2devId.length === 0) throw new RingFileError(file, 'ring has no replicas');
  const devs = data.devs.map((d) => (d === null ? null : Object.freeze({ ...d })));
  const n = devs.length;
  const regionOf = new Int32Array(n).fill(-1);
  const zoneOf = new Int32Array(n).fill(-1);
  const ipOf = new Int32Array(n).fill(-1);
  const regionIds = new Map<string, number>();
  const zoneIds = new Map<string, number>();
  const ipIds = new Map<string, number>();
  const idFor = (m: Map<string, number>, k: string): number => {
    let v = m.get(k);
    if (v === undefined) {
      v = m.size;
      m.set(k, v);
    }
    return v;
  };
  for (const d of devs) {
    if (!d) continue;
    regionOf[d.id] = idFor(regionIds, `${d.region}`);
    zoneOf[d.id] = idFor(zoneIds, `${d.region}\0${d.zone}`);
    ipOf[d.id] = idFor(ipIds, `${d.region}\0${d.zone}\0${d.ip}`);
  }
  const assigned = new Uint8Array(n);
  for (const row of data.replica2part2devId) for (let p = 0; p < row.length; p++) assigned[row[p] as number] = 1;
  const rs = new Set<number>();
  const zs = new Set<number>();
  const is = new Set<number>();
  let numAssignedDevs = 0;
  for (let id = 0; id < n; id++) {
    if (!assigned[id] || !devs[id]) continue;
    numAssignedDevs++;
    rs.add(regionOf[id] as number);
    zs.add(zoneOf[id] as number);
    is.add(ipOf[id] as number);
  }
  const maxIndex = data.replica2part2devId.length;
  return {
    data,
    rows: data.replica2part2devId,
    devs: Object.freeze(devs),
    partShift: data.partShift,
    partCount: data.partCount,
    replicaCount: data.replicaCount,
    md5: createHash('md5').update(buf).digest('hex'),
    mtimeMs,
    regionOf,
    zoneOf,
    ipOf,
    regionKeys: regionIds.size,
    zoneKeys: zoneIds.size,
    ipKeys: ipIds.size,
    numRegions: rs.size,
    numZones: zs.size,
    numIps: is.size,
    numAssignedDevs,
    primaryNodes: new Array<RingNode | undefined>(n * maxIndex),
    maxIndex,
  };
}
