// Replication benchmark, Swiftlet side. Four object servers (one device each, 127.0.0.1), a
// 3-replica ring of 1,024 partitions, N small objects that all have a replica on d1.
//   (a) d1 wiped: time until d1 again holds every object (passes of the replicators of d2..d4,
//       run at once as on separate nodes, repeated until complete); A_RUNS times (default 3,
//       d1 wiped again before each), the median reported, every run listed
//   (b) a pass over the in-sync cluster: all four nodes' replicators at once, wall time (B_RUNS
//       times, default 3; the median is reported, every run listed; CPU figures are the last run's)
//   (c) bytes the replicators sent (tar streams + missing-check/REPLICATE bodies) vs the bytes missing
// Prints one JSON line with the figures. Usage: node swiftlet.mjs [objects=10000] [objectBytes=4096]
// INSYNC_ONLY=1: d1 gets its replicas too and only (b) is measured (for (d), growth with objects).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { SwiftConf, Timestamp, silentLogger } from '@swiftlet/common';
import { BODY_CRC32_KEY, DiskFileManager, encodeTrailer } from '@swiftlet/diskfile';
import { RingData } from '@swiftlet/ring';
import { binPath, freePort, iniText, programEnvironment, startProcess } from '@swiftlet/cluster';

const OBJECTS = Number(process.argv[2] ?? 10_000);
const OBJECT_BYTES = Number(process.argv[3] ?? 4096);
const INSYNC_ONLY = process.env.INSYNC_ONLY === '1';
const PART_POWER = 10;
const SALT = { prefix: 'benchprefix', suffix: 'benchsuffix' };

const dir = await mkdtemp(join(tmpdir(), 'swiftlet-replbench-'));
const swiftDir = join(dir, 'etc');
await mkdir(swiftDir, { recursive: true });
await writeFile(join(swiftDir, 'swift.conf'), iniText({ 'swift-hash': { swift_hash_path_prefix: SALT.prefix, swift_hash_path_suffix: SALT.suffix } }));
const swiftConf = SwiftConf.load(swiftDir);
const nodes = [];
for (let i = 1; i <= 4; i++) {
  const n = { index: i, device: `d${i}`, port: await freePort(), devicesDir: join(dir, `node${i}`), conf: join(swiftDir, `object-server-${i}.conf`) };
  await mkdir(join(n.devicesDir, n.device), { recursive: true });
  await writeFile(
    n.conf,
    iniText({
      DEFAULT: { devices: n.devicesDir, mount_check: false, bind_ip: '127.0.0.1', bind_port: n.port, swift_dir: swiftDir, recon_cache_path: join(dir, `recon${i}`), log_level: 'info', workers: process.env.BENCH_OBJECT_WORKERS ?? 1 },
      'object-server': { log_requests: false },
      // Both systems at their default concurrency (Swift 1, Swiftlet 2) unless BENCH_CONCURRENCY.
      'object-replicator': { ...(process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {}), stats_interval: 3600 },
    }),
  );
  nodes.push(n);
}
const parts = 1 << PART_POWER;
const devs = nodes.map((n, i) => ({ id: i, region: 1, zone: i + 1, ip: '127.0.0.1', port: n.port, replicationIp: '127.0.0.1', replicationPort: n.port, device: n.device, weight: 1, meta: '' }));
const rows = [0, 1, 2].map((r) => Uint16Array.from({ length: parts }, (_, p) => (p + r) % 4));
await new RingData({ devs, replica2part2devId: rows, partShift: 32 - PART_POWER }).save(join(swiftDir, 'object.ring.gz'));
const primaries = (p) => [0, 1, 2].map((r) => (p + r) % 4);

// ---- population: OBJECTS objects with a replica on d1, written to their other two primaries --
const managers = nodes.map((n) => new DiskFileManager({ devices: n.devicesDir, mountCheck: false, reclaimAgeS: 604800, fallocateReserve: { percent: 0 }, swiftConf, logger: silentLogger() }));
const limit = pLimit(32);
const t0pop = Date.now();
const writes = [];
let written = 0;
const baseTs = Math.floor(Date.now() / 1000) - 3600;
for (let i = 0; written < OBJECTS; i++) {
  const name = `obj-${i}`;
  const hash = swiftConf.hashPath('a', 'c', name);
  const part = hash.digest.readUInt32BE(0) >>> (32 - PART_POWER);
  const prim = primaries(part);
  if (!prim.includes(0)) continue;
  written++;
  const body = randomBytes(OBJECT_BYTES);
  const ts = Timestamp.fromSeconds(baseTs + i / 1000);
  const etag = createHash('md5').update(body).digest('hex');
  const file = Buffer.concat([
    body,
    encodeTrailer({ name: `/a/c/${name}`, 'X-Timestamp': ts.internal, 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length), ETag: etag, [BODY_CRC32_KEY]: crc32(body).toString(16).padStart(8, '0') }),
  ]);
  for (const idx of prim.filter((x) => INSYNC_ONLY || x !== 0)) {
    // Written straight into the layout, no fsync (population is not timed; Swift's side does
    // the same); the hash caches are built afterwards from what is on disk.
    const hashDir = join(managers[idx].partitionPath(nodes[idx].device, 0, part), hash.hex.slice(-3), hash.hex);
    writes.push(limit(async () => {
      await mkdir(hashDir, { recursive: true });
      await writeFile(join(hashDir, `${ts.internal}.data`), file);
    }));
  }
}
await Promise.all(writes);
// Warm the hash caches of the sources, as in a cluster that was in sync before d1 was lost.
for (let idx = INSYNC_ONLY ? 0 : 1; idx < 4; idx++) {
  const ps = await managers[idx].listPartitions(nodes[idx].device, 0);
  await Promise.all(ps.map((p) => limit(() => managers[idx].getHashes(nodes[idx].device, p, 0))));
}
const populateS = (Date.now() - t0pop) / 1000;

// ---- servers ---------------------------------------------------------------------------------
const servers = [];
for (const n of nodes) {
  servers.push(await startProcess({ name: `object-server-${n.index}`, script: binPath('object-server'), program: 'object-server', args: [n.conf], healthUrl: `http://127.0.0.1:${n.port}/healthcheck` }));
}

/** In-sync passes made so far (BENCH_REPLICATOR_NODE_ARGS alternatives). */
let passIndex = 0;

function runReplicator(n, nodeArgs = []) {
  return new Promise((resolve, reject) => {
    // BENCH_REPLICATOR_NODE_ARGS: extra node flags for the replicators (experiments); with
    // alternatives separated by '|', in-sync pass i uses alternative i mod their count.
    const alternatives = (process.env.BENCH_REPLICATOR_NODE_ARGS ?? '').split('|');
    const extra = (alternatives[passIndex % alternatives.length] ?? '').split(' ').filter(Boolean);
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS_KB %M CPU_S %U %S', process.execPath, ...extra, ...nodeArgs, binPath('object-replicator'), n.conf, '--once'], { env: programEnvironment('object-replicator'), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      const end = out.split('\n').filter((l) => l.includes('"pass":"end"')).map((l) => JSON.parse(l))[0];
      const rss = Number(/MAXRSS_KB (\d+)/.exec(err)?.[1] ?? 0);
      const cpu = /CPU_S ([\d.]+) ([\d.]+)/.exec(err);
      if (code !== 0 || !end) reject(new Error(`replicator ${n.index} exit ${code}: ${err.slice(-500)} ${out.slice(-500)}`));
      else resolve({ summary: end, maxRssKiB: rss, cpuS: cpu ? Number(cpu[1]) + Number(cpu[2]) : 0 });
    });
  });
}

/**
 * User + system CPU seconds a process and its live children (an object server's workers) have
 * used so far (/proc/<pid>/stat fields 14 and 15).
 */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  let s = (Number(fields[11]) + Number(fields[12])) / 100;
  let children = '';
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
  } catch {
    // gone, or no children file
  }
  for (const c of children.split(' ').filter(Boolean)) s += cpuSeconds(Number(c));
  return s;
}

function median(values) {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function countData(n) {
  const root = join(n.devicesDir, n.device, 'objects');
  let count = 0;
  let bytes = 0;
  for (const p of await readdir(root).catch(() => [])) {
    for (const s of await readdir(join(root, p)).catch(() => [])) {
      if (!/^[0-9a-f]{3}$/.test(s)) continue;
      for (const h of await readdir(join(root, p, s)).catch(() => [])) {
        for (const f of await readdir(join(root, p, s, h)).catch(() => [])) {
          if (f.endsWith('.data')) {
            count++;
            bytes += (await stat(join(root, p, s, h, f))).size;
          }
        }
      }
    }
  }
  return { count, bytes };
}

const result = { system: 'swiftlet', objects: OBJECTS, objectBytes: OBJECT_BYTES, partitions: parts, populateS };
/**
 * BENCH_CPU_PROF=<dir>: V8 CPU profiles of the replicators' in-sync passes (and of their refill
 * passes too with BENCH_CPU_PROF_REFILL=1).
 */
function cpuProfArgs() {
  return process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
}

/** (b): every node's replicator runs one pass at once over the in-sync cluster; wall time. */
async function inSyncPass(prof = []) {
  const serverCpu = () => servers.reduce((a, s) => a + cpuSeconds(s.pid), 0);
  const cpu0 = serverCpu();
  const tb = Date.now();
  const four = await Promise.all(nodes.map((n) => runReplicator(n, prof)));
  passIndex++;
  result.b_inSyncPassWallS = (Date.now() - tb) / 1000;
  result.b_objectServersCpuS = Math.round((serverCpu() - cpu0) * 100) / 100;
  result.b_replicatorsCpuS = Math.round(four.reduce((a, r) => a + r.cpuS, 0) * 100) / 100;
  result.b_inSyncJobs = four.reduce((a, r) => a + r.summary.jobs, 0);
  // (b'): the pass as each replicator times it (from the start of its pass: process start-up and
  // config excluded, as swift_pass.py does for Swift), the slowest of the four.
  result.b_passS = Math.max(...four.map((r) => r.summary.durationS));
  result.b_inSyncSynced = four.reduce((a, r) => a + r.summary.stats.rsync, 0);
  return Math.max(...four.map((r) => r.maxRssKiB));
}

try {
  if (INSYNC_ONLY) {
    // B_RUNS passes (default 1); every run listed, the figure is the last.
    const runs = [];
    let maxRss = 0;
    for (let i = 0; i < Number(process.env.B_RUNS ?? 1); i++) {
      maxRss = Math.max(maxRss, await inSyncPass(i === 0 ? cpuProfArgs() : []));
      runs.push([result.b_inSyncPassWallS, result.b_replicatorsCpuS, result.b_objectServersCpuS]);
    }
    result.b_runs = runs;
    result.maxRssMiB = Math.round(maxRss / 1024);
  } else {
    // (a) + (c): d1 holds nothing (its copies were never written: the same as a wiped device).
    // A_RUNS refills (default 3, as on Swift's side; d1 wiped again before each after the first):
    // the median is the figure, every run listed; CPU, counters and (c) are the first run's.
    let maxRss = 0;
    const refills = [];
    for (let run = 0; run < Number(process.env.A_RUNS ?? 3); run++) {
      // The wipe: d1's objects folder moved out of the device (removed with the bench's folder),
      // as a replaced or reformatted device is; WIPE=rm removes it in place (README: the wipe).
      const objects = join(nodes[0].devicesDir, nodes[0].device, 'objects');
      if (run > 0) await (process.env.WIPE === 'rm' ? rm(objects, { recursive: true, force: true }) : rename(objects, join(dir, `wiped-${run}`)));
      let bytesSent = 0;
      let passes = 0;
      let replicatorsCpu = 0;
      /** The senders' pass counters summed (requests made, suffixes synced...). */
      const refillStats = {};
      // The population (or the wipe) was written without fsync: its writeback must not fall into
      // the timed refill (swift.sh does the same).
      execFileSync('sync');
      const serversCpu0 = servers.reduce((a, s) => a + cpuSeconds(s.pid), 0);
      const ta = Date.now();
      for (;;) {
        passes++;
        const runs = await Promise.all(nodes.slice(1).map((n) => runReplicator(n, process.env.BENCH_CPU_PROF_REFILL ? cpuProfArgs() : [])));
        for (const r of runs) {
          maxRss = Math.max(maxRss, r.maxRssKiB);
          replicatorsCpu += r.cpuS;
          bytesSent += (r.summary.stats.bytes_sent ?? 0) + (r.summary.stats.control_bytes ?? 0);
          for (const [k, v] of Object.entries(r.summary.stats)) if (typeof v === 'number') refillStats[k] = (refillStats[k] ?? 0) + v;
        }
        const { count } = await countData(nodes[0]);
        if (count >= OBJECTS || passes >= 6) break;
      }
      refills.push((Date.now() - ta) / 1000);
      const after = await countData(nodes[0]);
      if (run === 0) {
        result.a_passes = passes;
        result.a_objectServersCpuS = Math.round((servers.reduce((a, s) => a + cpuSeconds(s.pid), 0) - serversCpu0) * 100) / 100;
        result.a_replicatorsCpuS = Math.round(replicatorsCpu * 100) / 100;
        result.a_stats = refillStats;
        result.a_restored = after.count;
        result.c_bytesSent = bytesSent;
        result.c_bytesMissing = after.bytes;
        result.c_ratio = bytesSent / after.bytes;
      } else {
        result.a_restored = Math.min(result.a_restored, after.count);
        result.a_passes = Math.max(result.a_passes, passes);
      }
    }
    result.a_runsS = refills;
    result.a_refillS = median(refills);
    // (b): d1 rehashes what it received (its own pass), then every node runs one pass at once
    // over the in-sync cluster: wall time until the last ends.
    await runReplicator(nodes[0]);
    // B_RUNS passes (default 3), as on Swift's side: the median is the figure, every run listed.
    const runs = [];
    const passRuns = [];
    for (let i = 0; i < Number(process.env.B_RUNS ?? 3); i++) {
      maxRss = Math.max(maxRss, await inSyncPass(i === 0 ? cpuProfArgs() : []));
      runs.push(result.b_inSyncPassWallS);
      passRuns.push(result.b_passS);
    }
    result.b_runsS = runs;
    result.b_inSyncPassWallS = median(runs);
    result.b_passRunsS = passRuns;
    result.b_passS = median(passRuns);
    result.maxRssMiB = Math.round(maxRss / 1024);
  }
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await rm(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
