import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@swiftlet/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashPath } from '@swiftlet/common';
import { Ring, fastHashPath } from './ring.js';
import { RingData, RingFileError, type RingNode } from './ring-data.js';
import { device, sampleRing } from './test-rings.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swiftlet-ring-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SALT = { prefix: 'pre', suffix: 'suf' };

async function ringFile(rd: RingData, name = 'object.ring.gz'): Promise<string> {
  const f = join(dir, name);
  await rd.save(f);
  return f;
}

describe('partitions', () => {
  // Vectors from Swift 2.30.1 (swift.common.utils.hash_path with prefix "pre", suffix "suf").
  it.each([
    [['a'], 684, 175314],
    [['a', 'c'], 52, 13462],
    [['a', 'c', 'o'], 241, 61717],
    [['AUTH_test', 'photos', '2024/ü.jpg'], 449, 115078],
  ] as const)('%j -> partition %i (P=10) and %i (P=18)', async (name, p10, p18) => {
    const r10 = Ring.load(await ringFile(sampleRing(10, 1), 'p10.ring.gz'), { salt: SALT });
    expect(r10.getPart(...(name as [string, string?, string?]))).toBe(p10);
    const r18 = Ring.load(await ringFile(sampleRing(18, 1), 'p18.ring.gz'), { salt: SALT });
    expect(r18.getPart(...(name as [string, string?, string?]))).toBe(p18);
  });

  it('hashes names exactly as common hashPath does', () => {
    const salt = { prefix: 'prë', suffix: 'sûf' };
    const names: [string, string?, string?][] = [['a'], ['a', 'c'], ['a', 'c', 'o'], ['AUTH_ü', 'c/x', 'o/☃/ '], ['a', '', ''], ['a', 'c', '']];
    for (let i = 0; i < 200; i++) names.push([`acct${i}`, `cont${i % 7}`, `obj ${i} ${'é'.repeat(i % 5)}`]);
    for (const n of names) expect(fastHashPath(salt, ...n).equals(hashPath(salt, ...n).digest)).toBe(true);
    expect(() => fastHashPath(salt, 'a', '', 'o')).toThrow(/container/);
  });

  it('puts everything in partition 0 at part power 0', async () => {
    const rd = new RingData({ devs: [device(0, 1, 1, '10.0.0.1')], replica2part2devId: [Uint16Array.from([0])], partShift: 32 });
    const ring = Ring.load(await ringFile(rd), { salt: SALT });
    expect(ring.partCount).toBe(1);
    expect(ring.getPart('a', 'c', 'o')).toBe(0);
    expect(ring.getNodes('a').nodes.map((n) => n.id)).toEqual([0]);
  });

  it('needs a salt to hash names, and an object needs a container', async () => {
    const f = await ringFile(sampleRing(6, 3));
    expect(() => Ring.load(f).getPart('a')).toThrow(/without a hash path salt/);
    expect(() => Ring.load(f, { salt: SALT }).getPart('a', '', 'o')).toThrow(/container/);
  });

  it('forKind finds <kind>[-N].ring.gz and the salt in swift.conf', async () => {
    await writeFile(join(dir, 'swift.conf'), '[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n');
    await ringFile(sampleRing(10, 1), 'object-1.ring.gz');
    const ring = Ring.forKind(dir, 'object', 1);
    expect(ring.file).toBe(join(dir, 'object-1.ring.gz'));
    expect(ring.getPart('a', 'c', 'o')).toBe(241);
    expect(() => Ring.forKind(dir, 'container')).toThrow(RingFileError);
  });
});

describe('primary nodes', () => {
  it('lists each device once, in replica-row order, with index', async () => {
    const devs = [0, 1, 2].map((i) => device(i, 1, i + 1, `10.0.0.${i}`));
    const rows = [Uint16Array.from([0, 1]), Uint16Array.from([0, 2]), Uint16Array.from([2])];
    const ring = Ring.load(await ringFile(new RingData({ devs, replica2part2devId: rows, partShift: 31 })));
    expect(ring.replicaCount).toBe(2.5);
    expect(ring.getPartNodes(0).map((n) => [n.id, n.index])).toEqual([[0, 0], [2, 1]]);
    expect(ring.getPartNodes(1).map((n) => [n.id, n.index])).toEqual([[1, 0], [2, 1]]);
    const n = ring.getPartNodes(0)[1] as RingNode;
    expect(n).toMatchObject({ ip: '10.0.0.2', port: 6200, device: 'sdc2', zone: 3, region: 1 });
    // nodes are shared between calls, so they are frozen
    expect(Object.isFrozen(n)).toBe(true);
  });
});

describe('handoffs', () => {
  it('never yield a primary or a device twice, and cover every assigned device', async () => {
    const ring = Ring.load(await ringFile(sampleRing(8, 3)));
    for (let part = 0; part < ring.partCount; part += 7) {
      const primaries = ring.getPartNodes(part).map((n) => n.id);
      const handoffs = [...ring.getMoreNodes(part)];
      const ids = handoffs.map((n) => n.id);
      expect(new Set([...primaries, ...ids]).size).toBe(primaries.length + ids.length);
      expect(primaries.length + ids.length).toBe(24);
      expect(handoffs.map((n) => n.handoffIndex)).toEqual(ids.map((_, i) => i));
      expect(handoffs.map((n) => n.index)).toEqual(ids.map((_, i) => i + primaries.length));
    }
  });

  it('come region-first, then new zones, then new servers, then any device', async () => {
    const ring = Ring.load(await ringFile(sampleRing(8, 3)));
    const devs = ring.devices;
    for (let part = 0; part < ring.partCount; part += 5) {
      const seenR = new Set<number>();
      const seenZ = new Set<string>();
      const seenS = new Set<string>();
      for (const n of ring.getPartNodes(part)) {
        seenR.add(n.region);
        seenZ.add(`${n.region}/${n.zone}`);
        seenS.add(`${n.region}/${n.zone}/${n.ip}`);
      }
      let stage = 0; // 0 new region, 1 new zone, 2 new server, 3 anything
      for (const h of ring.getMoreNodes(part)) {
        const z = `${h.region}/${h.zone}`;
        const s = `${z}/${h.ip}`;
        const kind = !seenR.has(h.region) ? 0 : !seenZ.has(z) ? 1 : !seenS.has(s) ? 2 : 3;
        expect(kind).toBeGreaterThanOrEqual(stage);
        stage = kind;
        seenR.add(h.region);
        seenZ.add(z);
        seenS.add(s);
      }
      expect(seenR.size).toBe(2);
      expect(seenZ.size).toBe(6);
      expect(seenS.size).toBe(12);
      expect(devs.length).toBe(24);
    }
  });

  it('skip devices without partitions and are identical across ring instances', async () => {
    const rd = sampleRing(8, 3);
    rd.devs.push(device(24, 3, 9, '10.3.9.1', { weight: 0 })); // new region, but no partitions
    const f = await ringFile(rd);
    const a = Ring.load(f);
    const b = Ring.load(f);
    expect(a.assignedDeviceCount).toBe(24);
    for (let part = 0; part < a.partCount; part += 11) {
      const ha = [...a.getMoreNodes(part)].map((n) => n.id);
      expect(ha).not.toContain(24);
      expect([...b.getMoreNodes(part)].map((n) => n.id)).toEqual(ha);
    }
  });

  it('start from the md5(str(part)) partition of the table', async () => {
    // md5("0") = cf cd 20 84...: in a 4-partition ring the scan for partition 0 starts at
    // partition 3, then wraps to 1 and 2 (Swift's wrap-around range starts at inc, never at 0).
    const devs = [device(0, 1, 1, '10.0.0.1'), device(1, 2, 1, '10.0.0.2'), device(2, 2, 2, '10.0.0.3'), device(3, 2, 3, '10.0.0.4')];
    const rd = new RingData({ devs, replica2part2devId: [Uint16Array.from([0, 1, 2, 3])], partShift: 30 });
    const ring = Ring.load(await ringFile(rd));
    expect([...ring.getMoreNodes(0)].map((n) => n.id)).toEqual([3, 1, 2]);
  });
});

describe('reload', () => {
  it('re-reads the file only after reload_time and only when its mtime changed', async () => {
    const f = await ringFile(sampleRing(6, 3, 1));
    let now = 1_000_000;
    const ring = Ring.load(f, { reloadTimeS: 15, now: () => now, logger: silentLogger() });
    const md5a = ring.md5;
    const before = ring.getPartNodes(0).map((n) => n.id);
    await sampleRing(6, 3, 2).save(f);
    await utimes(f, 2000, 2000);
    now += 10_000; // within reload_time
    expect(ring.getPartNodes(0).map((n) => n.id)).toEqual(before);
    expect(ring.md5).toBe(md5a);
    now += 6_000; // past reload_time: an accessor reloads
    ring.getPartNodes(0);
    expect(ring.md5).not.toBe(md5a);
    const md5b = ring.md5;
    // same mtime, different content: not re-read
    await sampleRing(6, 3, 3).save(f);
    await utimes(f, 2000, 2000);
    now += 16_000;
    expect(ring.reloadIfChanged()).toBe(false);
    expect(ring.md5).toBe(md5b);
    // new mtime: re-read
    await utimes(f, 3000, 3000);
    expect(ring.reloadIfChanged()).toBe(false); // interval restarted by the check just made
    now += 16_000;
    expect(ring.reloadIfChanged()).toBe(true);
    expect(ring.md5).not.toBe(md5b);
  });

  it('keeps the old ring when the new file is bad, and logs a warning naming the file', async () => {
    const f = await ringFile(sampleRing(6, 3, 1));
    const lines: string[] = [];
    const { pino } = await import('pino');
    const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const ring = Ring.load(f, { reloadTimeS: 0, logger });
    const md5 = ring.md5;
    const nodes = ring.getPartNodes(3).map((n) => n.id);
    await writeFile(f, Buffer.from(sampleRing(6, 3, 2).toBuffer('object.ring.gz').subarray(0, 100)));
    await utimes(f, 5000, 5000);
    expect(ring.reloadIfChanged(true)).toBe(false);
    expect(ring.md5).toBe(md5);
    expect(ring.getPartNodes(3).map((n) => n.id)).toEqual(nodes);
    const warn = JSON.parse(lines.find((l) => l.includes('keeping the ring')) as string) as Record<string, unknown>;
    expect(warn['level']).toBe(40);
    expect(warn['err']).toContain(f);
    // Once the file is fixed, the next check picks it up.
    await sampleRing(6, 3, 2).save(f);
    await utimes(f, 6000, 6000);
    expect(ring.reloadIfChanged(true)).toBe(true);
  });

  it('refuses a bad file at load time', async () => {
    const f = join(dir, 'object.ring.gz');
    await writeFile(f, 'garbage');
    expect(() => Ring.load(f)).toThrow(new RegExp(`^${f}: `));
  });
});
