// Multipart benchmark: a 1 GiB upload in 16 MiB parts with 8 part uploads in parallel
// (@aws-sdk/lib-storage Upload), then a download of it (one GetObject, streamed and discarded),
// against a Swiftlet cluster (4 nodes, 3 replicas, started here) and Swift 2.30.1's proxy with
// s3api (the anchor on 127.0.0.1:8080, started with ./start.sh main only if not running, and then
// stopped again). Same client, same run. Samples the Swiftlet proxy's VmRSS every 100 ms.
//   node bench/s3/multipart.mjs [size-MiB (default 1024)]
// SWIFTLET_ONLY=1 skips Swift (for profiling Swiftlet's side alone); BENCH_PROCESS_PER_NODE=1 runs
// one swiftlet-storage-server per node. DOWNLOADS=n: downloads of
// the object, one after the other (default 3); the table gives the last, the note all of them.
// WARMUP_MIB=n: the untimed multipart upload each system gets first (default 256).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { startCluster } from '../../packages/cluster/dist/index.js';

const MiB = 1024 * 1024;
const SIZE = Number(process.argv[2] ?? 1024) * MiB;
const PART = 16 * MiB;
const QUEUE = 8;
const DOWNLOADS = Number(process.env.DOWNLOADS ?? 3);
const WARMUP = Number(process.env.WARMUP_MIB ?? 256) * MiB;
const ANCHOR = '/work/shared/anchors/swift';
const SWIFT_EP = 'http://127.0.0.1:8080';

async function healthy(ep) {
  try {
    return (await fetch(`${ep}/healthcheck`)).ok;
  } catch {
    return false;
  }
}

function source(size) {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  return Readable.from((function* () {
    for (let at = 0; at < size; at += MiB) yield block.subarray(0, Math.min(MiB, size - at));
  })());
}

function client(endpoint, accessKeyId, secretAccessKey) {
  return new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}

/** CPU seconds (user+system) used so far by these processes. */
function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return ticks / 100;
}

function swiftPids() {
  const run = '/tmp/anchor-swift/run';
  try {
    const parents = new Set(readdirSync(run).filter((f) => f.endsWith('.pid')).map((f) => Number(readFileSync(join(run, f), 'utf8').trim())).filter((n) => n > 0));
    // Swift's servers fork workers (one per core): count them too.
    const out = [...parents];
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const ppid = Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
        if (parents.has(ppid)) out.push(Number(d));
      } catch { /* gone */ }
    }
    return out;
  } catch {
    return [];
  }
}

async function run(name, c, bucket, pids) {
  try {
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (!/BucketAlready/.test(err.name)) throw err;
  }
  const key = `mpu-bench-${Date.now()}`;
  // An untimed warm-up upload first, as run.sh warms both systems up: a long-running server is
  // warm (Node compiles hot code as it runs; our first 1 GiB upload on a fresh cluster ran at 74-85
  // MiB/s, the next ones at ~100).
  if (WARMUP > 0) {
    await new Upload({ client: c, params: { Bucket: bucket, Key: `${key}-warm-up`, Body: source(WARMUP) }, partSize: PART, queueSize: QUEUE }).done();
    await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${key}-warm-up` }));
  }
  const l0 = loadavg()[0];
  const cpu = cpuSeconds(pids);
  const proxyCpu = cpuSeconds(pids.slice(0, 1));
  const t = process.hrtime.bigint();
  const up = new Upload({ client: c, params: { Bucket: bucket, Key: key, Body: source(SIZE) }, partSize: PART, queueSize: QUEUE });
  const done = await up.done();
  const upS = Number(process.hrtime.bigint() - t) / 1e9;
  const upCpu = cpuSeconds(pids) - cpu;
  const upProxyCpu = cpuSeconds(pids.slice(0, 1)) - proxyCpu;
  const head = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (head.ContentLength !== SIZE) throw new Error(`${name}: HEAD says ${head.ContentLength} bytes`);
  // The upload's dirty pages (three replicas of it) are written out first, so that the kernel's
  // writeback does not compete with the download (the same for both systems).
  execFileSync('sync');
  // Downloaded DOWNLOADS times: the first GET of a fresh process runs while Node compiles its code; the
  // later ones are what a long-running server gives. All are reported; the table uses the last.
  const downloads = [];
  for (let i = 0; i < DOWNLOADS; i++) {
    const cpu0 = cpuSeconds(pids);
    const proxyCpu0 = cpuSeconds(pids.slice(0, 1));
    const t0 = process.hrtime.bigint();
    const res = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    let got = 0;
    for await (const chunk of res.Body) got += chunk.length;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (got !== SIZE) throw new Error(`${name}: downloaded ${got} of ${SIZE} bytes`);
    downloads.push({ s, cpu: cpuSeconds(pids) - cpu0, proxyCpu: cpuSeconds(pids.slice(0, 1)) - proxyCpu0 });
  }
  const { s: downS, cpu: downCpu, proxyCpu: downProxyCpu } = downloads.at(-1);
  const downAllMiBs = downloads.map((d) => (SIZE / MiB / d.s).toFixed(1)).join(', ');
  await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  const l1 = loadavg()[0];
  return { name, etag: done.ETag, upMiBs: SIZE / MiB / upS, downMiBs: SIZE / MiB / downS, downAllMiBs, upCpu: upCpu / (SIZE / 1024 / MiB), downCpu: downCpu / (SIZE / 1024 / MiB), proxyCpu: `${(upProxyCpu / (SIZE / 1024 / MiB)).toFixed(1)}/${(downProxyCpu / (SIZE / 1024 / MiB)).toFixed(1)}`, load: `${l0.toFixed(1)}→${l1.toFixed(1)}` };
}

const dir = await mkdtemp(join(tmpdir(), 'swiftlet-mpubench-'));
const user = { accessKey: 'bench', secretKey: 'bench-secret', account: 'AUTH_bench' };
let startedSwift = false;
let cluster;
let rssMax = 0;
let sampler;
try {
  if (process.env.SWIFTLET_ONLY !== '1' && !(await healthy(SWIFT_EP))) {
    execFileSync('./start.sh', ['main'], { cwd: ANCHOR, stdio: 'ignore' });
    startedSwift = true;
    const end = Date.now() + 60_000;
    while (!(await healthy(SWIFT_EP))) {
      if (Date.now() > end) throw new Error('Swift did not start');
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  // BENCH_PROCESS_PER_NODE=1: one swiftlet-storage-server per node, as in run.sh.
  const processPerNode = process.env.BENCH_PROCESS_PER_NODE === '1';
  cluster = await startCluster({ dir, nodes: 4, replicas: 3, partPower: 10, daemons: false, users: [user], processPerNode });
  const proxyPid = cluster.processes.get('proxy-server')?.pid;
  sampler = setInterval(() => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proxyPid}/status`, 'utf8'));
      if (m) rssMax = Math.max(rssMax, Number(m[1]) / 1024);
    } catch { /* proxy gone */ }
  }, 100);
  // The proxy first: its own CPU is reported apart.
  const ourPids = [proxyPid, ...[...cluster.processes.values()].map((p) => p.pid).filter((p) => p && p !== proxyPid)];
  const ours = await run('Swiftlet', client(cluster.endpoint, user.accessKey, user.secretKey), 'mpubench', ourPids);
  if (process.env.SWIFTLET_ONLY === '1') {
    console.log(JSON.stringify({ ...ours, proxyMaxRssMiB: Math.round(rssMax) }));
  } else {
    const swift = await run('Swift s3api', client(SWIFT_EP, 'test:tester', 'testing'), 'mpubench', swiftPids());
    const r = (a, b) => (a / b).toFixed(2);
    console.log(`| ${SIZE / MiB} MiB in ${PART / MiB} MiB parts, ${QUEUE} parallel | Swiftlet MiB/s | Swift MiB/s | ratio | server CPU s/GiB Swiftlet | Swift | ratio |`);
    console.log('|---|---|---|---|---|---|---|');
    console.log(`| upload (lib-storage Upload) | ${ours.upMiBs.toFixed(1)} | ${swift.upMiBs.toFixed(1)} | ${r(ours.upMiBs, swift.upMiBs)} | ${ours.upCpu.toFixed(1)} | ${swift.upCpu.toFixed(1)} | ${r(swift.upCpu, ours.upCpu)} |`);
    console.log(`| download (one GetObject, the last of ${DOWNLOADS}) | ${ours.downMiBs.toFixed(1)} | ${swift.downMiBs.toFixed(1)} | ${r(ours.downMiBs, swift.downMiBs)} | ${ours.downCpu.toFixed(1)} | ${swift.downCpu.toFixed(1)} | ${r(swift.downCpu, ours.downCpu)} |`);
    console.log();
    console.log(`Swiftlet proxy max VmRSS (sampled every 100 ms): ${rssMax.toFixed(0)} MiB; 1-min load average during the runs: Swiftlet ${ours.load}, Swift ${swift.load}; Swiftlet proxy alone CPU s/GiB (up/down): ${ours.proxyCpu}; downloads in turn (MiB/s): Swiftlet ${ours.downAllMiBs}, Swift ${swift.downAllMiBs}; ETags ${ours.etag} / ${swift.etag}`);
  }
} finally {
  if (sampler) clearInterval(sampler);
  if (cluster) await cluster.stop();
  if (startedSwift) execFileSync('./stop.sh', [], { cwd: ANCHOR, stdio: 'ignore' });
  await rm(dir, { recursive: true, force: true });
}
