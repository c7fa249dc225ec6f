// Preloads objects for the GET runs, and times one large PUT and GET (streamed, never buffered).
// usage: node load.mjs preload <port> <device> <prefix> <count> <size>
//        node load.mjs big <port> <device> <name> <bytes>      -> JSON {putS, getS, bytes} (GET by curl)
//        node load.mjs bigput <port> <device> <name> <bytes>   -> JSON {putS, bytes} (the PUT alone)
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const [, , cmd, portS, device, prefix, a, b] = process.argv;
const port = Number(portS);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
let tick = 0;
const ts = () => (Date.now() / 1000 + (tick++ % 1000) / 100000).toFixed(5);

function put(path, size, writeBody) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'PUT', path, agent, headers: { 'X-Timestamp': ts(), 'Content-Type': 'application/octet-stream', 'Content-Length': size } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`PUT ${path}: ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    writeBody(req);
  });
}

if (cmd === 'preload') {
  const count = Number(a);
  const body = Buffer.alloc(Number(b), 'x');
  const jobs = [];
  for (let i = 0; i < count; i++) {
    jobs.push(put(`/${device}/${i % 64}/AUTH_bench/c/${prefix}-${i}`, body.length, (req) => req.end(body)));
    if (jobs.length >= 16) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
} else if (cmd === 'big' || cmd === 'bigput') {
  const total = Number(a);
  const chunk = randomBytes(1 << 20);
  const path = `/${device}/1/AUTH_bench/c/${prefix}`;
  const t0 = process.hrtime.bigint();
  await put(path, total, (req) => {
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  const putS = Number(process.hrtime.bigint() - t0) / 1e9;
  if (cmd === 'bigput') {
    process.stdout.write(JSON.stringify({ putS, bytes: total }) + '\n');
    agent.destroy();
    process.exit(0);
  }
  // The GET is timed with curl, for both systems: a Node client reading 1 GiB costs more CPU than
  // the server sending it (measured: 2.0 s against curl's 1.6 s for the same cold read).
  const t1 = process.hrtime.bigint();
  const out = execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `http://127.0.0.1:${port}${path}`], { encoding: 'utf8' });
  const [status, downloaded] = out.trim().split(' ').map(Number);
  if (status !== 200) throw new Error(`GET ${status}`);
  const got = { n: downloaded };
  const getS = Number(process.hrtime.bigint() - t1) / 1e9;
  if (got.n !== total) throw new Error(`GET returned ${got.n} of ${total} bytes`);
  process.stdout.write(JSON.stringify({ putS, getS, bytes: total }) + '\n');
}
agent.destroy();
