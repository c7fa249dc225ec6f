import { mkdtemp, readdir, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BuilderArgumentError,
  BuilderFileError,
  DuplicateDeviceError,
  MAX_BALANCE,
  Prng,
  RingBuilder,
  RingValidationError,
} from '../index.js';

interface Layout {
  regions: number;
  zones: number;
  hosts: number;
  disks: number;
  weight: (i: number) => number;
}

function build(pp: number, replicas: number, mph: number, l: Layout): RingBuilder {
  const b = RingBuilder.create(pp, replicas, mph);
  let i = 0;
  for (let r = 1; r <= l.regions; r++)
    for (let z = 1; z <= l.zones; z++)
      for (let h = 1; h <= l.hosts; h++)
        for (let d = 0; d < l.disks; d++) {
          b.addDev({ region: r, zone: z, ip: `10.${r}.${z}.${h}`, port: 6200, device: `sd${d}`, weight: l.weight(i++) });
        }
  return b;
}

const rowsOf = (b: RingBuilder): Uint32Array[] => b.replica2part2devId.map((r) => r.slice());

/** Partitions whose replica set differs, and how many replicas of each moved. */
function movedPerPart(before: Uint32Array[], after: readonly Uint32Array[]): number[] {
  const parts = after[0]!.length;
  const out = new Array<number>(parts).fill(0);
  for (let r = 0; r < Math.min(before.length, after.length); r++) {
    for (let p = 0; p < Math.min(before[r]!.length, after[r]!.length); p++) if (before[r]![p] !== after[r]![p]) out[p]!++;
  }
  return out;
}

describe('RingBuilder.create and device operations', () => {
  it('rejects bad part power, replicas and min_part_hours, quoting the value', () => {
    expect(() => RingBuilder.create(0, 3, 1)).toThrow(new BuilderArgumentError('part_power must be an integer from 1 to 32 (was 0)'));
    expect(() => RingBuilder.create(33, 3, 1)).toThrow(/\(was 33\)/);
    expect(() => RingBuilder.create(1.5, 3, 1)).toThrow(/\(was 1\.5\)/);
    expect(() => RingBuilder.create(8, 0.5, 1)).toThrow(new BuilderArgumentError('replicas must be at least 1 (was 0.5)'));
    expect(() => RingBuilder.create(8, 3, -1)).toThrow(/min_part_hours must be a non-negative integer \(was -1\)/);
  });

  it('gives the lowest free id, refuses duplicates, normalises addresses', () => {
    const b = RingBuilder.create(4, 1, 1);
    expect(b.addDev({ region: 1, zone: 1, ip: '127.0.0.1', port: 6200, device: 'sdb1', weight: 100 })).toBe(0);
    expect(b.addDev({ region: 1, zone: 1, ip: 'FE80::1', port: 6200, device: 'sdb1', weight: 100 })).toBe(1);
    expect(b.devs[1]!.ip).toBe('fe80:0000:0000:0000:0000:0000:0000:0001');
    expect(b.devs[0]!.replicationIp).toBe('127.0.0.1');
    expect(b.devs[0]!.replicationPort).toBe(6200);
    expect(() => b.addDev({ region: 1, zone: 1, ip: '127.0.0.1', port: 6200, device: 'sdb1', weight: 1 })).toThrow(
      new DuplicateDeviceError('Device 127.0.0.1:6200/sdb1 already exists (id 0)'),
    );
    expect(() => b.addDev({ id: 1, region: 1, zone: 1, ip: '127.0.0.2', port: 6200, device: 'x', weight: 1 })).toThrow('Duplicate device id: 1');
    expect(() => b.addDev({ region: 1, zone: 1, ip: '127.0.0.2', port: 6200, device: 'x', weight: -5 })).toThrow(/Invalid weight -5/);
    expect(() => b.addDev({ region: 1, zone: 1, ip: '999.1.1.1', port: 6200, device: 'x', weight: 1 })).toThrow(/Invalid address "999.1.1.1"/);
    b.addDev({ region: 1, zone: 2, ip: '127.0.0.2', port: 6200, device: 'sdc1', weight: 100 });
    expect(() => b.setDevInfo(2, { ip: '127.0.0.1', device: 'sdb1' })).toThrow(DuplicateDeviceError);
    b.setDevInfo(2, { port: 6210, meta: 'new disk' });
    expect(b.devs[2]).toMatchObject({ port: 6210, meta: 'new disk' });
    expect(b.searchDevs('z2').map((d) => d.id)).toEqual([2]);
    expect(b.searchDevs('d0r1z1-127.0.0.1:6200/sdb1').map((d) => d.id)).toEqual([0]);
    expect(b.searchDevs('_new').map((d) => d.id)).toEqual([2]);
    expect(b.searchDevs('[fe80::1]').map((d) => d.id)).toEqual([1]);
    expect(() => b.searchDevs('q9')).toThrow(/Invalid <search-value>: "q9"/);
  });

  it('setters refuse bad values and unknown devices, quoting them, and change nothing', () => {
    const b = build(6, 3, 1, { regions: 1, zones: 3, hosts: 1, disks: 1, weight: () => 100 });
    const before = JSON.stringify(b.toState().devs);
    expect(() => b.setDevWeight(9, 1)).toThrow('No device with id 9');
    expect(() => b.setDevWeight(0, Number.NaN)).toThrow(/Invalid weight NaN/);
    expect(() => b.setDevZone(0, -1)).toThrow(/Invalid zone -1/);
    expect(() => b.setDevRegion(0, 1.5)).toThrow(/Invalid region 1\.5/);
    expect(() => b.setDevInfo(0, { port: 70000 })).toThrow(/Invalid port 70000/);
    expect(() => b.setDevInfo(0, { device: ' sdb' })).toThrow(/Invalid device name " sdb"/);
    expect(() => b.setReplicas(0.9)).toThrow('replicas must be at least 1 (was 0.9)');
    expect(() => b.setOverload(-0.1)).toThrow('overload must be a non-negative number (was -0.1)');
    expect(() => b.setMinPartHours(-2)).toThrow('min_part_hours must be a non-negative integer (was -2)');
    expect(JSON.stringify(b.toState().devs)).toBe(before);
    expect(b.replicas).toBe(3);
    expect(b.overload).toBe(0);
  });

  it('refuses to rebalance with fewer weighted devices than replicas, and to validate before a rebalance', () => {
    const b = build(6, 3, 1, { regions: 1, zones: 2, hosts: 1, disks: 1, weight: () => 100 });
    expect(() => b.validate()).toThrow(RingValidationError);
    expect(() => b.rebalance()).toThrow(new RingValidationError('Replica count of 3 requires more than 2 devices'));
  });
});

describe('rebalance properties on random clusters', () => {
  const rng = new Prng(42);
  const clusters = Array.from({ length: 12 }, (_, i) => ({
    pp: 6 + (i % 4),
    replicas: [1, 2, 3, 3, 4][i % 5]!,
    layout: {
      regions: rng.randint(1, 2),
      zones: rng.randint(1, 4),
      hosts: rng.randint(1, 3),
      disks: rng.randint(1, 4),
      weight: (j: number) => [100, 100, 200, 50, 300][(j + i) % 5]!,
    },
  }));

  for (const [i, c] of clusters.entries()) {
    it(`cluster ${i}: distinct devices per partition, validate() passes, counts add up`, () => {
      const b = build(c.pp, c.replicas, 1, c.layout);
      const nDevs = b.devs.length;
      if (nDevs < c.replicas) {
        expect(() => b.rebalance({ seed: i })).toThrow(RingValidationError);
        return;
      }
      const res = b.rebalance({ seed: i });
      expect(res.changedParts).toBe(b.parts * c.replicas);
      b.validate();
      const rows = b.replica2part2devId;
      for (let p = 0; p < b.parts; p++) {
        const ids = rows.map((r) => r[p]);
        expect(new Set(ids).size).toBe(ids.length);
      }
      expect(b.devs.reduce((s, d) => s + d!.parts, 0)).toBe(b.parts * c.replicas);
      // When the plan is reachable (no overload needed), every device ends within one part-replica of it.
      if (b.getRequiredOverload() === 0) {
        for (const d of b.devs) expect(Math.abs(d!.partsWanted), `d${d!.id} ${JSON.stringify(c.layout)}`).toBeLessThanOrEqual(1);
      }
    });
  }

  it('N equal devices: every device within ±1 of parts*R/N, dispersion 0', () => {
    for (const [zones, hosts, disks] of [[3, 1, 4], [4, 2, 2], [1, 6, 1], [5, 1, 1]] as const) {
      const b = build(8, 3, 1, { regions: 1, zones, hosts, disks, weight: () => 100 });
      const res = b.rebalance({ seed: 7 });
      const n = b.devs.length;
      for (const d of b.devs) expect(Math.abs(d!.parts - (256 * 3) / n)).toBeLessThanOrEqual(1);
      expect(res.dispersion).toBe(0);
    }
  });

  it('respects min_part_hours and moves at most one replica of a partition per rebalance', () => {
    const b = build(8, 3, 1, { regions: 1, zones: 3, hosts: 2, disks: 2, weight: () => 100 });
    b.rebalance({ seed: 1 });
    b.addDev({ region: 1, zone: 4, ip: '10.1.4.1', port: 6200, device: 'sd0', weight: 1000 });
    const held = b.rebalance({ seed: 2 });
    expect(held.changedParts).toBe(0); // all moved < 1 h ago
    expect(held.notes.join('\n')).toMatch(/partitions on overweight devices moved less than min_part_hours \(1\) ago/);
    expect(b.minPartSecondsLeft()).toBeGreaterThan(3500);
    b.setMinPartHours(0);
    for (let round = 0; round < 3; round++) {
      const before = rowsOf(b);
      const res = b.rebalance({ seed: 3 + round });
      expect(Math.max(...movedPerPart(before, b.replica2part2devId))).toBeLessThanOrEqual(1);
      expect(res.changedParts).toBeLessThanOrEqual(b.parts);
      b.validate();
    }
  });

  it('adding one device moves within 10% of its ideal share', () => {
    const b = build(10, 3, 1, { regions: 1, zones: 3, hosts: 2, disks: 2, weight: () => 100 });
    b.rebalance({ seed: 1 });
    b.pretendMinPartHoursPassed();
    b.addDev({ region: 1, zone: 1, ip: '10.1.1.9', port: 6200, device: 'new', weight: 100 });
    const before = rowsOf(b);
    const res = b.rebalance({ seed: 2 });
    const ideal = (100 / 1300) * 1024 * 3;
    expect(Math.abs(res.changedParts - ideal) / ideal).toBeLessThan(0.1);
    expect(Math.max(...movedPerPart(before, b.replica2part2devId))).toBeLessThanOrEqual(1);
    expect(res.movesByDevice.get(12)).toEqual({ before: 0, after: b.devs[12]!.parts });
  });

  it('removing a device reassigns exactly its parts, regardless of min_part_hours, and frees its id', () => {
    const b = build(8, 3, 24, { regions: 1, zones: 3, hosts: 2, disks: 2, weight: () => 100 });
    b.rebalance({ seed: 1 });
    const held = b.devs[5]!.parts;
    b.removeDev(5);
    expect(() => b.setDevWeight(5, 10)).toThrow(/marked for removal/);
    const res = b.rebalance({ seed: 2 });
    expect(res.removedDevs).toBe(1);
    expect(res.changedParts).toBe(held);
    expect(res.movesByDevice.get(5)).toEqual({ before: held, after: 0 });
    expect(b.devs[5]).toBeNull();
    b.validate();
    expect(b.addDev({ region: 1, zone: 1, ip: '10.9.9.9', port: 6200, device: 'x', weight: 100 })).toBe(5);
  });

  it('a zero-weight device shows MAX_BALANCE while it still holds parts, and drains', () => {
    const b = build(8, 3, 0, { regions: 1, zones: 3, hosts: 2, disks: 1, weight: () => 100 });
    b.rebalance({ seed: 1 });
    b.setDevWeight(0, 0);
    expect(b.balancePerDev().get(0)).toBe(MAX_BALANCE);
    b.rebalance({ seed: 2 });
    expect(b.devs[0]!.parts).toBe(0);
    expect(b.balancePerDev().get(0)).toBe(0);
  });

  it('same seed gives an identical ring; dryRun leaves the builder unchanged', () => {
    const a = build(9, 3, 1, { regions: 2, zones: 2, hosts: 2, disks: 3, weight: (i) => 100 + (i % 3) * 50 });
    const c = a.clone();
    a.rebalance({ seed: 99 });
    c.rebalance({ seed: 99 });
    expect(rowsOf(a)).toEqual(rowsOf(c));
    const version = a.version;
    const before = rowsOf(a);
    a.pretendMinPartHoursPassed();
    a.setDevWeight(0, 500);
    const dry = a.rebalance({ seed: 5, dryRun: true });
    expect(dry.changedParts).toBeGreaterThan(0);
    expect(rowsOf(a)).toEqual(before);
    expect(a.version).toBe(version + 1);
  });

  it('fractional replicas: 3 -> 3.25 adds int(parts*0.25) slots, 3.25 -> 3 removes them', () => {
    const b = build(8, 3, 1, { regions: 1, zones: 4, hosts: 1, disks: 2, weight: () => 100 });
    b.rebalance({ seed: 1 });
    b.setReplicas(3.25);
    expect(b.devsChanged).toBe(true);
    const res = b.rebalance({ seed: 2 });
    expect(res.changedParts).toBe(64);
    expect(b.replica2part2devId.map((r) => r.length)).toEqual([256, 256, 256, 64]);
    b.validate();
    b.setReplicas(3);
    b.rebalance({ seed: 3 });
    expect(b.replica2part2devId.map((r) => r.length)).toEqual([256, 256, 256]);
    expect(b.devs.reduce((s, d) => s + d!.parts, 0)).toBe(768);
    b.validate();
  });

  it('overload: zones of 12, 12 and 11 disks', () => {
    const mk = (): RingBuilder => {
      const b = RingBuilder.create(10, 3, 1);
      for (const [z, n] of [[1, 12], [2, 12], [3, 11]] as const) {
        for (let d = 0; d < n; d++) b.addDev({ region: 1, zone: z, ip: `10.0.${z}.${1 + (d % 3)}`, port: 6200, device: `d${d}`, weight: 100 });
      }
      return b;
    };
    const weightsWin = mk();
    const required = weightsWin.getRequiredOverload();
    expect(required).toBeCloseTo(0.0606, 3);
    const r0 = weightsWin.rebalance({ seed: 1 });
    expect(r0.dispersion).toBeGreaterThan(0);
    expect(r0.balance).toBeLessThan(2);
    const dispersed = mk();
    dispersed.setOverload(0.1);
    const r1 = dispersed.rebalance({ seed: 1 });
    expect(r1.dispersion).toBe(0);
    const rows = dispersed.replica2part2devId;
    for (let p = 0; p < dispersed.parts; p++) {
      expect(new Set(rows.map((r) => dispersed.devs[r[p]!]!.zone)).size).toBe(3);
    }
    const report = dispersed.dispersionReport();
    expect(report.worstTier).toBeNull();
    expect(report.tiers.find((t) => t.tier === 'r1z3')).toMatchObject({ max: 1, atRisk: 0, placedParts: 1024 });
    const weighted = weightsWin.dispersionReport();
    expect(weighted.worstTier).not.toBeNull();
    expect(r0.notes.join('\n')).toMatch(/needs overload 6\.06%/);
  });

  it('validate() names what is wrong in a damaged table', () => {
    const b = build(6, 3, 1, { regions: 1, zones: 3, hosts: 1, disks: 2, weight: () => 100 });
    b.rebalance({ seed: 1 });
    b.validate();
    const dup = RingBuilder.fromState({ ...b.clone().toState() });
    const rows = dup.toState().rows!;
    const d0 = rows[0]![5]!;
    const d1 = rows[1]![5]!;
    rows[1]![5] = d0;
    dup.devs[d0]!.parts++;
    dup.devs[d1]!.parts--;
    expect(() => dup.validate()).toThrow(new RingValidationError(`The partition 5 has been assigned to duplicate devices [${d0}, ${d0}, ${rows[2]![5]}]`));
    const miscount = b.clone();
    miscount.devs[0]!.parts++;
    expect(() => miscount.validate()).toThrow(/All partitions are not double accounted for: 193 != 192/);
  });

  it('listParts lists partitions on given devices, most matches first', () => {
    const b = build(6, 3, 1, { regions: 1, zones: 3, hosts: 1, disks: 1, weight: () => 100 });
    b.rebalance({ seed: 1 });
    const parts = b.listParts([0, 1]);
    expect(parts.length).toBe(64);
    expect(parts[0]![1]).toBe(2);
  });
});

describe('builder file', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('round-trips everything and keeps a backup of every saved version', async () => {
    dir = await mkdtemp(join(tmpdir(), 'swiftlet-builder-'));
    const file = join(dir, 'object.builder');
    const b = build(8, 3.5, 2, { regions: 1, zones: 4, hosts: 1, disks: 2, weight: (i) => 100 + i });
    b.setOverload(0.05);
    b.rebalance({ seed: 4 });
    b.removeDev(3);
    await b.save(file);
    expect(b.id).toMatch(/^[0-9a-f]{32}$/);
    const l = await RingBuilder.load(file);
    expect(l.toState()).toEqual(b.toState());
    expect(l.minPartSecondsLeft()).toBe(b.minPartSecondsLeft());
    await l.save(file);
    const backups = await readdir(join(dir, 'backups'));
    expect(backups.length).toBe(2);
    for (const name of backups) expect(name).toMatch(/^\d+(_\d+)?\.object\.builder$/);
    // The loaded builder keeps the pending removal and min_part_hours state.
    const res = l.rebalance({ seed: 1 });
    expect(res.removedDevs).toBe(1);
    const rd = l.getRingData();
    expect(rd.partShift).toBe(24);
    expect(rd.replica2part2devId.map((r) => r.length)).toEqual([256, 256, 256, 128]);
    expect(rd.devs[3]).toBeNull();
    expect(rd.devs[0]).not.toHaveProperty('parts');
  });

  it('refuses files of another format or version, naming the file', async () => {
    dir ||= await mkdtemp(join(tmpdir(), 'swiftlet-builder-'));
    const { gzipSync } = await import('node:zlib');
    const other = join(dir, 'other.builder');
    await writeFile(other, gzipSync(JSON.stringify({ format: 'swiftlet-ring-builder', formatVersion: 9 })));
    await expect(RingBuilder.load(other)).rejects.toThrow(`${other}: unsupported builder format version 9`);
    await writeFile(other, gzipSync('{"hello": 1}'));
    await expect(RingBuilder.load(other)).rejects.toThrow(`${other}: not a swiftlet builder file`);
    await writeFile(other, Buffer.from([0x80, 0x02, 0x7d]));
    await expect(RingBuilder.load(other)).rejects.toThrow(/Swift \(pickle\) builder file/);
  });

  it('a loaded builder rebalances exactly like the one that was saved', async () => {
    dir ||= await mkdtemp(join(tmpdir(), 'swiftlet-builder-'));
    const file = join(dir, 'same.builder');
    const b = build(8, 3, 1, { regions: 1, zones: 3, hosts: 2, disks: 2, weight: (i) => 100 + 10 * i });
    b.rebalance({ seed: 1 });
    b.pretendMinPartHoursPassed();
    b.setDevWeight(2, 400);
    await b.save(file);
    const l = await RingBuilder.load(file);
    b.rebalance({ seed: 8 });
    l.rebalance({ seed: 8 });
    expect(rowsOf(l)).toEqual(rowsOf(b));
  });

  it('names the file when it is missing or corrupt, and writes nothing', async () => {
    dir ||= await mkdtemp(join(tmpdir(), 'swiftlet-builder-'));
    const missing = join(dir, 'nope.builder');
    await expect(RingBuilder.load(missing)).rejects.toThrow(new BuilderFileError(missing, 'builder file not found'));
    const bad = join(dir, 'bad.builder');
    await writeFile(bad, 'garbage');
    await expect(RingBuilder.load(bad)).rejects.toThrow(`${bad}: corrupt builder file (not gzip)`);
    expect(await readFile(bad, 'utf8')).toBe('garbage');
  });
});
