/**
 * Interoperability with OpenStack Swift itself (Debian's python3-swift 2.30.1): rings built by
 * Swift's swift-ring-builder are read by our Ring and give Swift's partitions, primaries and
 * handoffs; rings we write are read by Swift's RingData/Ring and give the same answers.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring, RingBuilder, RingData, type RingDevice } from '@swiftlet/ring';

const PYTHON = '/usr/bin/python3';
const SALT = { prefix: 'interop-prefix', suffix: 'interop-suffix' };

// One python3 process answers every name: [part, [primary ids], [handoff ids]] per name, plus
// the device dicts of the ring as Swift sees them.
const LOOKUP_PY = `
import contextlib, io, json, sys
import swift.common.utils as utils
import swift.cli.ringbuilder as rb
from swift.common.ring import Ring, RingData
spec = json.load(sys.stdin)
statuses = []
for args in spec['commands']:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            code = rb.main(['swift-ring-builder'] + args) or 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 0
    statuses.append(code)
ring_file = spec['ring_file']
utils.HASH_PATH_PREFIX = spec['prefix'].encode()
utils.HASH_PATH_SUFFIX = spec['suffix'].encode()
ring = Ring(ring_file)
out = []
for name in spec['names']:
    part, nodes = ring.get_nodes(*name)
    out.append([part, [n['id'] for n in nodes], [n['id'] for n in ring.get_more_nodes(part)]])
rd = RingData.load(ring_file)
json.dump({'statuses': statuses, 'answers': out, 'devs': rd.devs, 'md5': rd.md5, 'replica_count': ring.replica_count,
           'table': [list(r) for r in rd._replica2part2dev_id] if len(rd._replica2part2dev_id[0]) <= 4096 else None,
           'version': rd.version}, sys.stdout)
`;

type Name = [string] | [string, string] | [string, string, string];

function names(count: number): Name[] {
  const out: Name[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 10 === 0) out.push([`AUTH_acct${i}`]);
    else if (i % 10 === 1) out.push([`AUTH_acct${i % 13}`, `container-${i}`]);
    else out.push([`AUTH_acct${i % 13}`, `c${i % 7}`, `obj/${i}/ünïcødé ☃ ${i * 7919}`]);
  }
  return out;
}

interface SwiftAnswers {
  statuses: number[];
  answers: [number, number[], number[]][];
  devs: (Record<string, unknown> | null)[];
  md5: string;
  replica_count: number;
  table: number[][] | null;
  version: number | null;
}

/** One python3 process: optional swift-ring-builder commands, then Swift's answers for `list`. */
function swiftLookup(ringFile: string, list: Name[], commands: string[][] = []): SwiftAnswers {
  const out = execFileSync(PYTHON, ['-c', LOOKUP_PY], {
    cwd: dir,
    input: JSON.stringify({ commands, ring_file: ringFile, names: list, prefix: SALT.prefix, suffix: SALT.suffix }),
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  });
  return JSON.parse(out) as SwiftAnswers;
}

function ourLookup(ring: Ring, list: Name[]): [number, number[], number[]][] {
  return list.map((n) => {
    const { part, nodes } = ring.getNodes(...n);
    return [part, nodes.map((d) => d.id), [...ring.getMoreNodes(part)].map((d) => d.id)];
  });
}

let dir: string;

beforeAll(() => {
  const probe = spawnSync(PYTHON, ['-c', 'import swift.common.ring'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      `OpenStack Swift's Python library is missing (${PYTHON} -c 'import swift.common.ring' failed: ` +
        `${probe.stderr.trim().split('\n').at(-1) ?? ''}); install it with 'make debian-deps' (python3-swift)`,
    );
  }
  dir = mkdtempSync(join(tmpdir(), 'swiftlet-ring-interop-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("rings built by Swift's swift-ring-builder", () => {
  it.each([
    ['three replicas', '3'],
    ['fractional replicas (3.25)', '3.25'],
  ])('%s: same partitions, primaries and handoffs as Swift', (_what, replicas) => {
    const builder = join(dir, `swift-${replicas}.builder`);
    // 2 regions x 3 zones x 2 servers x 2 disks, uneven weights, one zero-weight device.
    const adds: string[] = [];
    let w = 0;
    for (let r = 1; r <= 2; r++)
      for (let z = 1; z <= 3; z++)
        for (let s = 1; s <= 2; s++)
          for (let d = 1; d <= 2; d++) adds.push(`r${r}z${z}-10.${r}.${z}.${s}:${6200 + d}/sdb${d}`, `${100 + (w++ % 5) * 25}`);
    adds.push('r2z3-10.2.3.9:6200/sdz', '0');
    const ringFile = builder.replace(/\.builder$/, '.ring.gz');
    const list = names(3000);
    const swift = swiftLookup(ringFile, list, [
      [builder, 'create', '10', replicas, '1'],
      [builder, 'add', ...adds],
      [builder, 'rebalance', '--seed', '7'],
    ]);
    expect(swift.statuses[0]).toBe(0);
    expect(swift.statuses[1]).toBe(0);
    expect(swift.statuses[2]).toBeLessThan(2);
    const ring = Ring.load(ringFile, { salt: SALT });
    expect(ring.replicaCount).toBeCloseTo(swift.replica_count, 10);
    expect(ring.md5).toBe(swift.md5);
    const ours = ourLookup(ring, list);
    for (let i = 0; i < list.length; i++) expect(ours[i], JSON.stringify(list[i])).toEqual(swift.answers[i]);
    // Handoffs reached beyond the first passes (every assigned device appears for some name).
    expect(Math.max(...ours.map((a) => a[1].length + a[2].length))).toBe(24);
    // The device dicts map field by field.
    for (const d of swift.devs) {
      if (!d) continue;
      const ourDev = ring.devices[d['id'] as number] as RingDevice;
      expect({
        id: ourDev.id, region: ourDev.region, zone: ourDev.zone, ip: ourDev.ip, port: ourDev.port,
        replication_ip: ourDev.replicationIp, replication_port: ourDev.replicationPort,
        device: ourDev.device, weight: ourDev.weight, meta: ourDev.meta,
      }).toEqual(d);
    }
    // Re-serialising Swift's ring gives the same data back.
    const again = RingData.fromBuffer(RingData.fromFile(ringFile).toBuffer('x.ring.gz'));
    expect(again.replica2part2devId.map((r) => [...r])).toEqual(swift.table);
    expect(again.version).toBe(swift.version);
  });
});

describe('rings written by Swiftlet', () => {
  function randomRing(partPower: number, replicas: number, seed: number): RingData {
    let x = seed;
    const rnd = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return (x >>> 8) % n;
    };
    const devs: (RingDevice | null)[] = [];
    for (let id = 0; id < 40; id++) {
      if (id === 5) {
        devs.push(null); // a hole left by a removed device
        continue;
      }
      const region = 1 + (id % 3);
      const zone = 1 + (id % 4);
      const ip = `10.${region}.${zone}.${id % 5}`;
      devs.push({
        id, region, zone, ip, port: 6200 + (id % 2), replicationIp: ip, replicationPort: 6300,
        device: `d${id}`, weight: 1 + (id % 7) * 0.5, meta: id === 3 ? 'naïve "meta"' : '',
      });
    }
    const live = devs.filter((d): d is RingDevice => d !== null).map((d) => d.id);
    const parts = 2 ** partPower;
    const rows: Uint16Array[] = [];
    for (let r = 0; r < Math.ceil(replicas); r++) {
      const len = r < Math.floor(replicas) ? parts : Math.floor(parts * (replicas % 1));
      const row = new Uint16Array(len);
      for (let p = 0; p < len; p++) row[p] = live[rnd(live.length)] as number;
      rows.push(row);
    }
    return new RingData({ devs, replica2part2devId: rows, partShift: 32 - partPower, version: 42 });
  }

  it.each([
    ['part power 8, 3 replicas', 8, 3],
    ['part power 17 (handoff scan step > 1), 2.5 replicas', 17, 2.5],
  ])("%s: Swift's RingData and Ring read it and agree", async (_what, partPower, replicas) => {
    const rd = randomRing(partPower, replicas, partPower);
    const ringFile = join(dir, `ours-${partPower}.ring.gz`);
    await rd.save(ringFile);
    const list = names(partPower > 10 ? 400 : 2000);
    const swift = swiftLookup(ringFile, list);
    const ring = Ring.load(ringFile, { salt: SALT });
    expect(swift.md5).toBe(ring.md5);
    expect(swift.version).toBe(42);
    expect(swift.replica_count).toBeCloseTo(replicas, 10);
    if (swift.table) expect(swift.table).toEqual(rd.replica2part2devId.map((r) => [...r]));
    expect(swift.devs[5]).toBeNull();
    expect(swift.devs[3]).toMatchObject({ meta: 'naïve "meta"', weight: 2.5, replication_port: 6300 });
    const ours = ourLookup(ring, list);
    for (let i = 0; i < list.length; i++) expect(ours[i], JSON.stringify(list[i])).toEqual(swift.answers[i]);
  });

  it("a ring from our RingBuilder gives Swift's answers", async () => {
    const b = RingBuilder.create(9, 3.5, 1);
    let n = 0;
    for (let r = 1; r <= 2; r++)
      for (let z = 1; z <= 3; z++)
        for (let s = 1; s <= 2; s++) b.addDev({ region: r, zone: z, ip: `10.${r}.${z}.${s}`, port: 6200, device: `d${n}`, weight: 50 + 10 * (n++ % 4) });
    b.rebalance({ seed: 11 });
    b.validate();
    const ringFile = join(dir, 'built.ring.gz');
    await b.getRingData().save(ringFile);
    const list = names(1500);
    const swift = swiftLookup(ringFile, list);
    const ring = Ring.load(ringFile, { salt: SALT });
    expect(swift.md5).toBe(ring.md5);
    expect(swift.replica_count).toBeCloseTo(3.5, 10);
    const ours = ourLookup(ring, list);
    for (let i = 0; i < list.length; i++) expect(ours[i], JSON.stringify(list[i])).toEqual(swift.answers[i]);
  });
});
