/**
 * A small cluster of real container and account server processes on 127.0.0.1 for the
 * integration tests: temp devices, swift.conf, account and container rings (every server holds
 * every partition, so the ring has as many replicas as servers).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendPath } from '@swiftlet/common';
import { binPath, freePort, iniText, startProcess, type ServerProcess } from '@swiftlet/cluster';
import { RingData, type RingDevice } from '@swiftlet/ring';

export const PART_POWER = 2;

export interface DbNode {
  kind: 'container' | 'account';
  index: number;
  port: number;
  device: string;
  devices: string;
  conf: string;
  server?: ServerProcess;
}

export class DbCluster {
  readonly containers: DbNode[] = [];
  readonly accounts: DbNode[] = [];
  private constructor(
    readonly dir: string,
    readonly swiftDir: string,
  ) {}

  static async start(opts: { containers: number; accounts: number; containerReplicas?: number; conf?: Record<string, Record<string, string | number>> }): Promise<DbCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'swiftlet-db-'));
    const c = new DbCluster(dir, join(dir, 'swift'));
    await mkdir(c.swiftDir, { recursive: true });
    await writeFile(
      join(c.swiftDir, 'swift.conf'),
      iniText({
        'swift-hash': { swift_hash_path_prefix: 'pre', swift_hash_path_suffix: 'suf' },
        'storage-policy:0': { name: 'gold', default: 'yes' },
        'storage-policy:1': { name: 'silver' },
      }),
    );
    for (const [kind, n] of [['container', opts.containers], ['account', opts.accounts]] as const) {
      for (let i = 0; i < n; i++) {
        const node: DbNode = { kind, index: i, port: await freePort(), device: `d${i}`, devices: join(dir, `${kind}${i}`), conf: join(dir, `${kind}-server-${i}.conf`) };
        await mkdir(join(node.devices, node.device), { recursive: true });
        await writeFile(
          node.conf,
          iniText({
            DEFAULT: { devices: node.devices, mount_check: 'false', bind_ip: '127.0.0.1', bind_port: node.port, swift_dir: c.swiftDir, log_level: 'INFO' },
            'container-updater': { interval: 3600, account_update_delay: 0.1, node_timeout: 10, conn_timeout: 2 },
            'container-replicator': { interval: 0, conn_timeout: 2 },
            'account-replicator': { interval: 0, conn_timeout: 2 },
            ...(opts.conf ?? {}),
          }),
        );
        (kind === 'container' ? c.containers : c.accounts).push(node);
      }
    }
    await c.writeRing('account', c.accounts);
    await c.writeRing('container', c.containers, opts.containerReplicas);
    try {
      await Promise.all([...c.accounts, ...c.containers].map((n) => c.startNode(n)));
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  private async writeRing(kind: 'account' | 'container', nodes: DbNode[], replicas = nodes.length): Promise<void> {
    if (nodes.length === 0) return;
    const devs: RingDevice[] = nodes.map((n, i) => ({
      id: i, region: 1, zone: i + 1, ip: '127.0.0.1', port: n.port, replicationIp: '127.0.0.1', replicationPort: n.port, device: n.device, weight: 1, meta: '',
    }));
    const parts = 1 << PART_POWER;
    const rows = Array.from({ length: replicas }, (_r, r) => Uint16Array.from({ length: parts }, (_x, p) => (p + r) % nodes.length));
    await new RingData({ devs, replica2part2devId: rows, partShift: 32 - PART_POWER }).save(join(this.swiftDir, `${kind}.ring.gz`));
  }

  async startNode(n: DbNode): Promise<void> {
    n.server = await startProcess({
      name: `${n.kind}-server-${n.index}`,
      script: binPath(`${n.kind}-server`),
      args: [n.conf],
      logFile: join(this.dir, `${n.kind}-server-${n.index}.log`),
      healthUrl: `http://127.0.0.1:${n.port}/healthcheck`,
    });
  }

  async stopNode(n: DbNode): Promise<void> {
    await n.server?.stop();
    n.server = undefined;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.containers, ...this.accounts].map((n) => this.stopNode(n)));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A request to one node; `path` segments are encoded like Swift's backend paths. */
export async function req(
  node: DbNode,
  method: string,
  segments: (string | number)[],
  opts: { headers?: Record<string, string>; query?: Record<string, string>; device?: string } = {},
): Promise<{ status: number; headers: Headers; text: string; json: <T>() => T }> {
  const qs = opts.query ? `?${new URLSearchParams(opts.query).toString()}` : '';
  const res = await fetch(`http://127.0.0.1:${node.port}${backendPath(opts.device ?? node.device, ...segments)}${qs}`, { method, headers: opts.headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: <T>() => JSON.parse(text) as T };
}

let tick = Date.now() * 100;
/** Increasing timestamps for a test (10 µs apart, in Swift's internal form). */
export function ts(): string {
  tick += 1;
  return `${Math.floor(tick / 100000)}.${String(tick % 100000).padStart(5, '0')}`;
}
