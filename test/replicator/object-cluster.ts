/**
 * Four object servers as real processes (one device each, d1..d4 on 127.0.0.1) with a 3-replica
 * object ring, and the object replicator run with --once as a process: the fixture of the
 * replication integration tests. Objects are written and read through the object servers'
 * backend API, exactly as the proxy would.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binPath, freePort, iniText, startProcess, type ServerProcess } from '@swiftlet/cluster';
import { RingData, type RingDevice } from '@swiftlet/ring';

export const SALT = { prefix: 'replprefix', suffix: 'replsuffix' };
export const PART_POWER = 4;

export interface Node {
  index: number;
  device: string;
  port: number;
  devicesDir: string;
  conf: string;
  reconDir: string;
  server?: ServerProcess;
}

export interface ReplicatorRun {
  code: number | null;
  log: string;
  lines: Record<string, unknown>[];
  durationMs: number;
}

export class ObjectCluster {
  readonly nodes: Node[] = [];
  private constructor(readonly dir: string) {}

  get swiftDir(): string {
    return join(this.dir, 'etc');
  }

  get ringFile(): string {
    return join(this.swiftDir, 'object.ring.gz');
  }

  static async start(opts: { replicatorConf?: Record<string, string | number | boolean> } = {}): Promise<ObjectCluster> {
    const c = new ObjectCluster(await mkdtemp(join(tmpdir(), 'swiftlet-repl-')));
    await mkdir(c.swiftDir, { recursive: true });
    await writeFile(
      join(c.swiftDir, 'swift.conf'),
      iniText({
        'swift-hash': { swift_hash_path_prefix: SALT.prefix, swift_hash_path_suffix: SALT.suffix },
        'storage-policy:0': { name: 'gold', default: 'yes' },
      }),
    );
    for (let i = 1; i <= 4; i++) {
      const node: Node = {
        index: i,
        device: `d${i}`,
        port: await freePort(),
        devicesDir: join(c.dir, `node${i}`),
        conf: join(c.swiftDir, `object-server-${i}.conf`),
        reconDir: join(c.dir, `recon${i}`),
      };
      await mkdir(join(node.devicesDir, node.device), { recursive: true });
      await writeFile(
        node.conf,
        iniText({
          DEFAULT: {
            devices: node.devicesDir,
            mount_check: false,
            bind_ip: '127.0.0.1',
            bind_port: node.port,
            swift_dir: c.swiftDir,
            recon_cache_path: node.reconDir,
            log_level: 'info',
          },
          // Request lines: a test counts the REPLICATE calls a server answered.
          'object-server': { workers: 1, log_requests: true },
          'object-replicator': {
            interval: 1,
            http_timeout: 5,
            node_timeout: 5,
            conn_timeout: 0.5,
            stats_interval: 60,
            ...(opts.replicatorConf ?? {}),
          },
        }),
      );
      c.nodes.push(node);
    }
    await c.writeRing();
    try {
      await Promise.all(c.nodes.map((n) => c.startServer(n)));
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** Partition p's replica r is on device (p + r + shift) % 4: easy to reason about in tests. */
  async writeRing(opts: { shift?: number; meta?: string } = {}): Promise<void> {
    const devs: RingDevice[] = this.nodes.map((n, i) => ({
      id: i,
      region: 1,
      zone: i + 1,
      ip: '127.0.0.1',
      port: n.port,
      replicationIp: '127.0.0.1',
      replicationPort: n.port,
      device: n.device,
      weight: 1,
      meta: opts.meta ?? '',
    }));
    const parts = 1 << PART_POWER;
    const rows = [0, 1, 2].map((r) => Uint16Array.from({ length: parts }, (_, p) => (p + r + (opts.shift ?? 0)) % 4));
    await new RingData({ devs, replica2part2devId: rows, partShift: 32 - PART_POWER }).save(this.ringFile);
  }

  async startServer(n: Node): Promise<void> {
    n.server = await startProcess({
      name: `object-server-${n.index}`,
      script: binPath('object-server'),
      args: [n.conf],
      logFile: join(this.dir, `object-server-${n.index}.log`),
      healthUrl: `http://127.0.0.1:${n.port}/healthcheck`,
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.server?.stop()));
    await rm(this.dir, { recursive: true, force: true });
  }

  // ---- placement -------------------------------------------------------------------------

  hashOf(account: string, container: string, object: string): string {
    return createHash('md5').update(`${SALT.prefix}/${account}/${container}/${object}${SALT.suffix}`).digest('hex');
  }

  partitionOf(account: string, container: string, object: string): number {
    return Buffer.from(this.hashOf(account, container, object), 'hex').readUInt32BE(0) >>> (32 - PART_POWER);
  }

  /** Primaries of a partition in the ring written by writeRing (no shift). */
  primariesOf(part: number, shift = 0): Node[] {
    return [0, 1, 2].map((r) => this.nodes[(part + r + shift) % 4] as Node);
  }

  handoffOf(part: number, shift = 0): Node {
    return this.nodes[(part + 3 + shift) % 4] as Node;
  }

  /** An object name that lands in partition `part`. */
  nameIn(part: number, prefix = 'o'): string {
    // A partition outside the ring would make the search below endless.
    if (!Number.isInteger(part) || part < 0 || part >= 1 << PART_POWER) throw new RangeError(`no partition ${part} in a ring of ${1 << PART_POWER}`);
    for (let i = 0; ; i++) {
      const name = `${prefix}-${i}`;
      if (this.partitionOf('a', 'c', name) === part) return name;
    }
  }

  // ---- backend API -------------------------------------------------------------------------

  url(n: Node, part: number, object: string): string {
    return `http://127.0.0.1:${n.port}/${n.device}/${part}/a/c/${encodeURIComponent(object)}`;
  }

  async put(n: Node, object: string, body: string | Buffer, ts: string): Promise<number> {
    const part = this.partitionOf('a', 'c', object);
    const res = await fetch(this.url(n, part, object), {
      method: 'PUT',
      headers: { 'X-Timestamp': ts, 'Content-Type': 'application/octet-stream', 'Content-Length': String(Buffer.byteLength(body)) },
      body,
    });
    await res.arrayBuffer();
    return res.status;
  }

  async del(n: Node, object: string, ts: string): Promise<number> {
    const part = this.partitionOf('a', 'c', object);
    const res = await fetch(this.url(n, part, object), { method: 'DELETE', headers: { 'X-Timestamp': ts } });
    await res.arrayBuffer();
    return res.status;
  }

  /** status, body, and the stored timestamp (X-Timestamp, or X-Backend-Timestamp of a tombstone). */
  async get(n: Node, object: string): Promise<{ status: number; body: string; timestamp: string | null }> {
    const part = this.partitionOf('a', 'c', object);
    const res = await fetch(this.url(n, part, object));
    const body = await res.text();
    return { status: res.status, body, timestamp: res.headers.get('x-timestamp') ?? res.headers.get('x-backend-timestamp') };
  }

  // ---- on disk ---------------------------------------------------------------------------------

  partitionDir(n: Node, part: number): string {
    return join(n.devicesDir, n.device, 'objects', String(part));
  }

  /** Every object file of a partition as `<suffix>/<hash>/<file>` (hash cache files excluded). */
  async filesOf(n: Node, part: number): Promise<string[]> {
    const out: string[] = [];
    const dir = this.partitionDir(n, part);
    let suffixes: string[];
    try {
      suffixes = await readdir(dir);
    } catch {
      return out;
    }
    for (const s of suffixes.filter((x) => /^[0-9a-f]{3}$/.test(x))) {
      for (const h of await readdir(join(dir, s)).catch(() => [] as string[])) {
        for (const f of await readdir(join(dir, s, h)).catch(() => [] as string[])) out.push(`${s}/${h}/${f}`);
      }
    }
    return out.sort();
  }

  async recon(n: Node): Promise<Record<string, unknown>> {
    return JSON.parse(await readFile(join(n.reconDir, 'object.recon'), 'utf8')) as Record<string, unknown>;
  }

  // ---- the replicator ------------------------------------------------------------------------

  async replicate(n: Node, args: string[] = [], opts: { timeoutMs?: number; confOverride?: string } = {}): Promise<ReplicatorRun> {
    const logFile = join(this.dir, `replicator-${n.index}-${Date.now()}.log`);
    const t0 = Date.now();
    const p = await startProcess({
      name: `object-replicator-${n.index}`,
      script: binPath('object-replicator'),
      args: [opts.confOverride ?? n.conf, '--once', ...args],
      logFile,
    });
    const timer = setTimeout(() => void p.kill(), opts.timeoutMs ?? 30_000);
    const code = await p.exited;
    clearTimeout(timer);
    const durationMs = Date.now() - t0;
    // The log file stream may still be flushing when the process is gone.
    await new Promise((r) => setTimeout(r, 20));
    const log = await readFile(logFile, 'utf8').catch(() => '');
    const lines = log
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { code, log, lines, durationMs };
  }

  /** Starts a replicator without waiting (forever unless `args` has --once). */
  async startReplicator(n: Node, args: string[] = []): Promise<{ proc: ServerProcess; logFile: string }> {
    const logFile = join(this.dir, `replicator-${n.index}-${Date.now()}.log`);
    const proc = await startProcess({
      name: `object-replicator-${n.index}`,
      script: binPath('object-replicator'),
      args: [n.conf, ...args],
      logFile,
    });
    return { proc, logFile };
  }
}

export function summaryOf(run: ReplicatorRun): Record<string, unknown> {
  const line = run.lines.find((l) => l['pass'] === 'end');
  if (!line) throw new Error(`no pass summary in replicator log (exit ${run.code}):\n${run.log.slice(-3000)}`);
  return line;
}

let tsCounter = 0;
/** Increasing timestamps in Swift's normal form. */
export function nextTs(): string {
  tsCounter++;
  const base = Math.floor(Date.now() / 1000) - 1000;
  return `${base + tsCounter}.00000`;
}
