#!/usr/bin/env node
// Listing benchmark: a container of N rows inserted through the backend HTTP API (bounded
// concurrency), then pages of 1,000 from the start, the middle and with a delimiter; RSS of the
// server. Runs Swiftlet's container server (built bin) and, with --swift, Swift 2.30.1's
// container server of the SAIO anchor (127.0.0.1:6211, device d1) on the same rows.
//
//   node bench/listing/listing-bench.mjs [--rows 1000000] [--swift-rows 200000] [--concurrency 64] [--swift]
// The insert ratio compares the same row count: Swift's SWIFT_ROWS against the time Swiftlet took
// for its first SWIFT_ROWS rows.
//
// Row names are `d%04d/o%07d` (1,000 rows per common prefix), so a delimiter listing rolls
// every prefix up. Prints a JSON summary on stdout.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROWS = opt('rows', 1_000_000);
const SWIFT_ROWS = opt('swift-rows', 200_000);
const CONCURRENCY = opt('concurrency', 64);
const WITH_SWIFT = args.includes('--swift');
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function request(port, method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

let tick = Math.floor(Date.now() / 10) * 1000;
const ts = () => {
  tick += 1;
  return `${Math.floor(tick / 100000)}.${String(tick % 100000).padStart(5, '0')}`;
};
const rowName = (i) => `d${String(Math.floor(i / 1000)).padStart(4, '0')}/o${String(i).padStart(7, '0')}`;

async function insert(port, base, n, checkpoint = 0) {
  let next = 0;
  let failed = 0;
  let done = 0;
  let checkpointS;
  const started = process.hrtime.bigint();
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const r = await request(port, 'PUT', `${base}/${rowName(i)}`, {
        'x-timestamp': ts(),
        'x-size': String(i % 4096),
        'x-content-type': 'application/octet-stream',
        'x-etag': 'd41d8cd98f00b204e9800998ecf8427e',
      });
      if (r.status !== 201) failed++;
      if (++done === checkpoint) checkpointS = Number(process.hrtime.bigint() - started) / 1e9;
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  const out = { rows: n, seconds: Math.round(s * 10) / 10, rowsPerSecond: Math.round(n / s), failed };
  if (checkpointS !== undefined) out.first = { rows: checkpoint, seconds: Math.round(checkpointS * 10) / 10, rowsPerSecond: Math.round(checkpoint / checkpointS) };
  return out;
}

async function pageTimes(port, base, n) {
  const mid = rowName(Math.floor(n / 2));
  const pages = {
    start: `?format=json&limit=1000`,
    middle: `?format=json&limit=1000&marker=${encodeURIComponent(mid)}`,
    delimiter: `?format=json&limit=1000&delimiter=%2F`,
    prefixDelimiter: `?format=json&limit=1000&delimiter=%2F&prefix=${encodeURIComponent(rowName(Math.floor(n / 2)).slice(0, 6))}`,
    reverseMiddle: `?format=json&limit=1000&reverse=true&marker=${encodeURIComponent(mid)}`,
  };
  const out = {};
  for (const [what, qs] of Object.entries(pages)) {
    await request(port, 'GET', base + qs); // warm
    const times = [];
    let rows = 0;
    for (let k = 0; k < 7; k++) {
      const t0 = process.hrtime.bigint();
      const r = await request(port, 'GET', base + qs);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      rows = JSON.parse(r.body).length;
    }
    times.sort((a, b) => a - b);
    out[what] = { medianMs: Math.round(times[3] * 10) / 10, maxMs: Math.round(times[6] * 10) / 10, rows };
  }
  return out;
}

async function rssMiB(pid) {
  const st = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1] ?? 0);
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
}

async function waitHealthy(port) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await request(port, 'GET', '/healthcheck')).status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server on ${port} did not start`);
}

async function benchSwiftlet() {
  const dir = await mkdtemp(join(tmpdir(), 'swiftlet-listing-bench-'));
  const port = 16201 + Math.floor(Math.random() * 1000);
  await mkdir(join(dir, 'devs', 'd1'), { recursive: true });
  await writeFile(join(dir, 'swift.conf'), '[swift-hash]\nswift_hash_path_prefix = p\nswift_hash_path_suffix = s\n');
  await writeFile(
    join(dir, 'container-server.conf'),
    `[DEFAULT]\ndevices = ${dir}/devs\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = ${port}\nswift_dir = ${dir}\nlog_level = WARNING\n[container-replicator]\ninterval = 0\n[container-updater]\ninterval = 3600\n`,
  );
  const child = spawn(process.execPath, [join(repo, 'packages/container-server/dist/bin/container-server.js'), join(dir, 'container-server.conf')], { stdio: 'ignore' });
  try {
    await waitHealthy(port);
    const base = '/d1/0/AUTH_bench/big';
    if ((await request(port, 'PUT', base, { 'x-timestamp': ts() })).status !== 201) throw new Error('container PUT failed');
    const result = { insert: await insert(port, base, ROWS, WITH_SWIFT && SWIFT_ROWS < ROWS ? SWIFT_ROWS : 0) };
    result.rssAfterInsertMiB = await rssMiB(child.pid);
    const head = await request(port, 'HEAD', base);
    result.objectCount = Number(head.headers['x-container-object-count']);
    result.pages = await pageTimes(port, base, ROWS);
    result.rssAfterListingMiB = await rssMiB(child.pid);
    return result;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

async function benchSwift() {
  const port = 6211;
  const base = `/d1/0/AUTH_bench/listing${Date.now()}`;
  let child;
  try {
    await request(port, 'GET', '/healthcheck');
  } catch {
    // Not running: start only this one container server of the anchor (2 workers, its default).
    child = spawn('/usr/bin/swift-container-server', ['/tmp/anchor-swift/etc/container-server/1.conf'], { stdio: 'ignore', detached: true });
    await waitHealthy(port);
  }
  try {
    if ((await request(port, 'PUT', base, { 'x-timestamp': ts() })).status !== 201) throw new Error('swift container PUT failed');
    const result = { insert: await insert(port, base, SWIFT_ROWS) };
    const head = await request(port, 'HEAD', base);
    result.objectCount = Number(head.headers['x-container-object-count']);
    result.pages = await pageTimes(port, base, SWIFT_ROWS);
    return result;
  } finally {
    if (child) {
      process.kill(-child.pid, 'SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }
}

const summary = { rows: ROWS, concurrency: CONCURRENCY, swiftlet: await benchSwiftlet() };
if (WITH_SWIFT) {
  summary.swift = await benchSwift();
  // Same row count for both: Swiftlet's time to its first SWIFT_ROWS rows (of a bigger container).
  const ours = summary.swiftlet.insert.first ?? summary.swiftlet.insert;
  summary.insertRatio = Math.round((ours.rowsPerSecond / summary.swift.insert.rowsPerSecond) * 100) / 100;
}
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
agent.destroy();
