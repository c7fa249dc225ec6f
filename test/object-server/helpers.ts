/** Starting a real swiftlet-object-server for a test, and a small raw HTTP client. */
import { mkdtemp, mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binPath, freePort, iniText, startProcess, type ServerProcess } from '@swiftlet/cluster';
import { Timestamp } from '@swiftlet/common';

export const SWIFT_CONF = `[swift-hash]
swift_hash_path_prefix = testprefix
swift_hash_path_suffix = testsuffix

[storage-policy:0]
name = gold
default = yes

[storage-policy:1]
name = silver
`;

export interface TestServer {
  dir: string;
  devices: string;
  swiftDir: string;
  port: number;
  base: string;
  logFile: string;
  proc: ServerProcess;
  stop(): Promise<void>;
  log(): Promise<Record<string, unknown>[]>;
}

export async function startObjectServer(
  opts: { devices?: string[]; server?: Record<string, string | number>; dir?: string } = {},
): Promise<TestServer> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'swiftlet-os-')));
  const devices = join(dir, 'srv');
  const swiftDir = join(dir, 'etc');
  await mkdir(swiftDir, { recursive: true });
  for (const d of opts.devices ?? ['sda']) await mkdir(join(devices, d), { recursive: true });
  await writeFile(join(swiftDir, 'swift.conf'), SWIFT_CONF);
  const port = await freePort();
  const conf = join(dir, `object-server-${port}.conf`);
  await writeFile(
    conf,
    iniText({
      DEFAULT: { devices, mount_check: 'false', bind_ip: '127.0.0.1', bind_port: port, swift_dir: swiftDir, recon_cache_path: join(dir, 'recon') },
      'object-server': { ...(opts.server ?? {}) },
    }),
  );
  const logFile = join(dir, `object-server-${port}.log`);
  const proc = await startProcess({
    name: 'object-server',
    script: binPath('object-server'),
    args: [conf],
    logFile,
    healthUrl: `http://127.0.0.1:${port}/healthcheck`,
  });
  return {
    dir,
    devices,
    swiftDir,
    port,
    base: `http://127.0.0.1:${port}`,
    logFile,
    proc,
    stop: async () => {
      await proc.stop();
    },
    log: async () =>
      (await readFile(logFile, 'utf8'))
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/**
 * One request with full control over headers and body; `body` may be a Buffer or a string.
 * `trailers` are sent after the body (a chunked request: say so in `headers`).
 */
export function request(
  port: number,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders = {},
  body?: string | Buffer,
  trailers?: Record<string, string>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    // A string would be sent in one write with the headers, all encoded as UTF-8 (Node merges
    // them), which mangles latin-1 header values: always send bytes.
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    if (trailers) {
      if (bytes) req.write(bytes);
      req.addTrailers(trailers);
      req.end();
    } else req.end(bytes);
  });
}

let tick = 0;
/** Strictly increasing timestamps (now, plus a counter so two calls never collide). */
export function ts(offsetS = 0): string {
  tick += 1;
  return new Timestamp(Math.round((Date.now() / 1000 + offsetS) * 100_000) + tick).internal;
}

export function put(port: number, path: string, body: string | Buffer, headers: OutgoingHttpHeaders = {}): Promise<Answer> {
  return request(port, 'PUT', path, { 'X-Timestamp': ts(), 'Content-Type': 'application/octet-stream', 'Content-Length': Buffer.byteLength(body), ...headers }, body);
}

/** Every file under `dir` (relative paths), for asserting what is (not) on disk. */
export async function listFiles(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(dir.length + 1))
    .sort();
}

/** Sends raw bytes on a fresh connection and returns everything the server sent until it closed (or `untilMs`). */
export async function rawRequest(port: number, data: string | Buffer, untilMs = 3000): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    let out = '';
    const sock = net.connect(port, '127.0.0.1', () => sock.write(data));
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(out);
    }, untilMs);
    sock.on('data', (d) => (out += d.toString('latin1')));
    sock.on('end', () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
