#!/usr/bin/env node
// Ring builder benchmark: Swiftlet's RingBuilder beside Swift's (python3-swift), same clusters,
// same scenarios, seed 1. Needs `npx tsc -b packages/ring` first. Usage:
//   node bench/ring/run.mjs            # both, prints a markdown table
//   node bench/ring/run.mjs --no-swift # ours only
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RingBuilder } from '../../packages/ring/dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const SEED = 1;

function p14Cluster() {
  const b = RingBuilder.create(14, 3, 1);
  const weights = [100, 200, 400];
  let i = 0;
  for (let r = 1; r <= 3; r++)
    for (let z = 1; z <= 4; z++)
      for (let d = 0; d < 8; d++) {
        b.addDev({ region: r, zone: z, ip: `10.${r}.${z}.${1 + Math.floor(d / 4)}`, port: 6200, device: `sd${d}`, weight: weights[i % 3] });
        i++;
      }
  return b;
}

function flatCluster() {
  const b = RingBuilder.create(14, 3, 1);
  for (let z = 1; z <= 4; z++)
    for (let h = 1; h <= 2; h++)
      for (let d = 0; d < 3; d++) b.addDev({ region: 1, zone: z, ip: `10.0.${z}.${h}`, port: 6200, device: `sd${d}`, weight: 100 });
  return b;
}

function p18Cluster() {
  const b = RingBuilder.create(18, 3, 1);
  for (let i = 0; i < 100; i++) {
    const z = i % 5;
    b.addDev({ region: 1, zone: 1 + z, ip: `10.0.${z}.${1 + (Math.floor(i / 5) % 4)}`, port: 6200, device: `sd${i}`, weight: 100 });
  }
  return b;
}

const totalWeight = (b) => b.devs.reduce((s, d) => s + (d ? d.weight : 0), 0);

/** Rebalances copies of b `repeat` times; the fastest time, the last result (same seed, same ring). */
function measure(name, b, ideal, repeat = 1) {
  let wall = Infinity;
  let cpu = Infinity;
  let r;
  let target = b;
  for (let i = 0; i < repeat; i++) {
    target = i < repeat - 1 ? b.clone() : b;
    const t = performance.now();
    const c = process.cpuUsage();
    r = target.rebalance({ seed: SEED });
    wall = Math.min(wall, (performance.now() - t) / 1000);
    const used = process.cpuUsage(c);
    cpu = Math.min(cpu, (used.user + used.system) / 1e6);
  }
  b.validate();
  const out = { scenario: name, seconds: wall, cpu, balance: r.balance, dispersion: r.dispersion, moved: r.changedParts };
  if (ideal !== undefined) out.ideal = ideal;
  return out;
}

function ours() {
  const res = [];
  const base = p14Cluster();
  res.push(measure('p14-3r4z8d', base, undefined, 3));
  {
    const b = base.clone();
    b.pretendMinPartHoursPassed();
    const w = 200;
    const ideal = (w / (totalWeight(b) + w)) * b.parts * b.replicas;
    b.addDev({ region: 1, zone: 1, ip: '10.1.1.9', port: 6200, device: 'new', weight: w });
    res.push(measure('add-one-device', b, ideal, 3));
  }
  {
    const b = base.clone();
    b.pretendMinPartHoursPassed();
    b.setDevWeight(0, 200);
    res.push(measure('change-one-weight', b, undefined, 3));
  }
  {
    const b = base.clone();
    b.pretendMinPartHoursPassed();
    const zone = b.devs.filter((d) => d && d.region === 1 && d.zone === 1);
    const zoneParts = zone.reduce((s, d) => s + d.parts, 0);
    for (const d of zone) b.removeDev(d.id);
    res.push(measure('remove-zone', b, zoneParts, 3));
  }
  {
    const flat = flatCluster();
    res.push(measure('flat-p14-24dev', flat));
    const b = flat.clone();
    b.pretendMinPartHoursPassed();
    const ideal = (100 / (totalWeight(b) + 100)) * b.parts * b.replicas;
    b.addDev({ region: 1, zone: 1, ip: '10.0.1.3', port: 6200, device: 'new', weight: 100 });
    res.push(measure('flat-add-one-device', b, ideal, 3));
  }
  res.push(measure('p18-100dev', p18Cluster()));
  return res;
}

function swift() {
  const p = spawnSync('/usr/bin/python3', [join(here, 'swift_bench.py')], { encoding: 'utf8', timeout: 600_000 });
  if (p.status !== 0) throw new Error(`swift_bench.py failed: ${p.stderr}`);
  return p.stdout.trim().split('\n').map((l) => JSON.parse(l));
}

const mine = ours();
const theirs = process.argv.includes('--no-swift') ? [] : swift();
const f = (x, d = 2) => (x === undefined ? '-' : x.toFixed(d));
console.log('| scenario | impl | wall (s) | cpu (s) | balance | dispersion | part-replicas moved | ideal moves |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const m of mine) {
  const s = theirs.find((x) => x.scenario === m.scenario);
  console.log(`| ${m.scenario} | swiftlet | ${f(m.seconds, 3)} | ${f(m.cpu, 3)} | ${f(m.balance)} | ${f(m.dispersion)} | ${m.moved} | ${f(m.ideal, 0)} |`);
  if (s) {
    console.log(`| ${m.scenario} | swift 2.30.1 | ${f(s.seconds, 3)} | ${f(s.cpu, 3)} | ${f(s.balance)} | ${f(s.dispersion)} | ${s.moved} | ${f(s.ideal, 0)} |`);
    console.log(`| ${m.scenario} | swift/swiftlet | ${f(s.seconds / m.seconds, 1)}x | ${f(s.cpu / m.cpu, 1)}x | | | | |`);
  }
}
