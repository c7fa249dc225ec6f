/**
 * The all-in-one cluster: rings, configs and every server as a process, on loopback. `make run`
 * uses it for a developer's cluster under ./var (kept between runs); the integration and probe
 * tests use it with a temporary folder, so that tests run exactly what operators run.
 *
 * Shape (as Swift's SAIO): `nodes` storage nodes, node N with one device `dN` in zone N, each node
 * running an object, a container and an account server; the proxy (S3 gateway) in front. Object,
 * container and account rings have `replicas` replicas over those devices.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RingBuilder } from '@swiftlet/ring';
import { binPath, freePort, iniText, startProcess, type ServerProcess } from './process.js';

export type StorageServerKind = 'object' | 'container' | 'account';
const STORAGE_KINDS: readonly StorageServerKind[] = ['object', 'container', 'account'];

export interface ClusterUser {
  accessKey: string;
  secretKey: string;
  account: string;
}

export interface ClusterOptions {
  /** Folder for configs, rings, devices and logs; kept as it is if it already holds a cluster. */
  dir: string;
  nodes?: number;
  replicas?: number;
  partPower?: number;
  /** S3 port; 0 or undefined picks a free one. */
  s3Port?: number;
  /** Storage server ports: node N uses base+10N (object), +1 (container), +2 (account). Free ports when undefined. */
  portBase?: number;
  users?: ClusterUser[];
  /** Start the object replicators and updaters (default true). */
  daemons?: boolean;
  /** Extra [DEFAULT]/section keys per server kind, e.g. { object: { 'object-replicator': { interval: 1 } } }. */
  extraConf?: Partial<Record<StorageServerKind | 'proxy', Record<string, Record<string, string | number | boolean>>>>;
  /** Where the servers' output goes: one file per process under <dir>/log (default) or discarded. */
  logs?: boolean;
  /**
   * One `swiftlet-storage-server` process per node instead of an object, a container and an
   * account server process (default false: tests stop and start the servers of a node one by one).
   */
  processPerNode?: boolean;
}

export interface StorageNode {
  index: number;
  device: string;
  devicesDir: string;
  ports: Record<StorageServerKind, number>;
  confFiles: Record<StorageServerKind, string>;
}

export const DEFAULT_USER: ClusterUser = {
  accessKey: 'swiftlet-dev',
  secretKey: 'swiftlet-dev-secret',
  account: 'AUTH_dev',
};

interface ClusterLayout {
  version: 1;
  nodes: StorageNode[];
  s3Port: number;
  proxyConf: string;
  credentialsFile: string;
}

export class Cluster {
  readonly processes = new Map<string, ServerProcess>();

  private constructor(
    readonly dir: string,
    readonly swiftDir: string,
    readonly nodes: StorageNode[],
    readonly s3Port: number,
    readonly proxyConf: string,
    readonly credentialsFile: string,
    readonly users: ClusterUser[],
    private readonly opts: ClusterOptions,
  ) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.s3Port}`;
  }

  /** Writes (or reuses) rings and configs under opts.dir. Starts nothing. */
  static async prepare(opts: ClusterOptions): Promise<Cluster> {
    const dir = opts.dir;
    const swiftDir = join(dir, 'etc');
    const layoutFile = join(dir, 'cluster.json');
    const users = opts.users ?? [DEFAULT_USER];
    await mkdir(swiftDir, { recursive: true });
    await mkdir(join(dir, 'log'), { recursive: true });

    let layout: ClusterLayout;
    if (existsSync(layoutFile)) {
      layout = JSON.parse(await readFile(layoutFile, 'utf8')) as ClusterLayout;
    } else {
      layout = await Cluster.planLayout(opts);
      await Cluster.writeSwiftConf(swiftDir);
      await Cluster.writeRings(swiftDir, layout.nodes, opts.replicas ?? 3, opts.partPower ?? 10);
      await writeFile(layoutFile, JSON.stringify(layout, null, 2) + '\n');
    }
    const cluster = new Cluster(
      dir,
      swiftDir,
      layout.nodes,
      layout.s3Port,
      layout.proxyConf,
      layout.credentialsFile,
      users,
      opts,
    );
    // Configs are rewritten on every start so that a newer Swiftlet's keys and the current users apply.
    await cluster.writeConfigs();
    return cluster;
  }

  private static async planLayout(opts: ClusterOptions): Promise<ClusterLayout> {
    const count = opts.nodes ?? 4;
    const nodes: StorageNode[] = [];
    for (let i = 1; i <= count; i++) {
      const ports = {} as Record<StorageServerKind, number>;
      for (const [k, kind] of STORAGE_KINDS.entries()) {
        ports[kind] = opts.portBase !== undefined ? opts.portBase + 10 * i + k : await freePort();
      }
      const devicesDir = join(opts.dir, 'srv', `node${i}`);
      const confFiles = {} as Record<StorageServerKind, string>;
      for (const kind of STORAGE_KINDS) confFiles[kind] = join(opts.dir, 'etc', `node${i}`, `${kind}-server.conf`);
      nodes.push({ index: i, device: `d${i}`, devicesDir, ports, confFiles });
    }
    const s3Port = opts.s3Port ? opts.s3Port : await freePort();
    return {
      version: 1,
      nodes,
      s3Port,
      proxyConf: join(opts.dir, 'etc', 'proxy-server.conf'),
      credentialsFile: join(opts.dir, 'etc', 's3-credentials.conf'),
    };
  }

  private static async writeSwiftConf(swiftDir: string): Promise<void> {
    // A fresh secret salt per cluster, as an operator would set it: never shared, never changed.
    const text = iniText({
      'swift-hash': {
        swift_hash_path_prefix: randomBytes(8).toString('hex'),
        swift_hash_path_suffix: randomBytes(8).toString('hex'),
      },
      'storage-policy:0': { name: 'gold', default: 'yes' },
    });
    await writeFile(join(swiftDir, 'swift.conf'), text);
  }

  private static async writeRings(swiftDir: string, nodes: StorageNode[], replicas: number, partPower: number): Promise<void> {
    for (const kind of STORAGE_KINDS) {
      const builder = RingBuilder.create(partPower, Math.min(replicas, nodes.length), 1);
      for (const node of nodes) {
        builder.addDev({
          region: 1,
          zone: node.index,
          ip: '127.0.0.1',
          port: node.ports[kind],
          device: node.device,
          weight: 100,
        });
      }
      builder.rebalance({ seed: 1 });
      await builder.save(join(swiftDir, `${kind}.builder`));
      await builder.getRingData().save(join(swiftDir, `${kind}.ring.gz`));
    }
  }

  private async writeConfigs(): Promise<void> {
    const extra = this.opts.extraConf ?? {};
    for (const node of this.nodes) {
      await mkdir(join(node.devicesDir, node.device), { recursive: true });
      const cacheDir = join(this.dir, 'cache', `node${node.index}`);
      await mkdir(cacheDir, { recursive: true });
      for (const kind of STORAGE_KINDS) {
        const sections: Record<string, Record<string, string | number | boolean>> = {
          DEFAULT: {
            devices: node.devicesDir,
            mount_check: false,
            bind_ip: '127.0.0.1',
            bind_port: node.ports[kind],
            swift_dir: this.swiftDir,
            recon_cache_path: cacheDir,
            workers: 1,
          },
        };
        if (kind === 'object') {
          sections['object-replicator'] = { interval: 30, concurrency: 2 };
          sections['object-updater'] = { interval: 10 };
        }
        for (const [name, kv] of Object.entries(extra[kind] ?? {})) sections[name] = { ...(sections[name] ?? {}), ...kv };
        await mkdir(join(this.dir, 'etc', `node${node.index}`), { recursive: true });
        await writeFile(node.confFiles[kind], iniText(sections));
      }
    }
    const proxySections: Record<string, Record<string, string | number | boolean>> = {
      DEFAULT: { bind_ip: '127.0.0.1', bind_port: this.s3Port, swift_dir: this.swiftDir, workers: 1 },
      'proxy-server': {},
      s3api: { credentials_file: this.credentialsFile, region: 'us-east-1' },
    };
    for (const [name, kv] of Object.entries(extra.proxy ?? {})) proxySections[name] = { ...(proxySections[name] ?? {}), ...kv };
    await writeFile(this.proxyConf, iniText(proxySections));
    await this.writeCredentials(this.users);
  }

  /** Rewrites the credentials file (the proxy re-reads it when it changes). */
  async writeCredentials(users: ClusterUser[]): Promise<void> {
    const sections: Record<string, Record<string, string>> = {};
    for (const u of users) sections[`user:${u.accessKey}`] = { secret_key: u.secretKey, account: u.account };
    await writeFile(this.credentialsFile, iniText(sections), { mode: 0o600 });
  }

  private logFile(name: string): string | undefined {
    return this.opts.logs === false ? undefined : join(this.dir, 'log', `${name}.log`);
  }

  /** Starts one storage server of one node and waits for its health check. */
  async startStorageServer(node: StorageNode, kind: StorageServerKind): Promise<ServerProcess> {
    const name = `${kind}-server-${node.index}`;
    const proc = await startProcess({
      name,
      script: binPath(`${kind}-server`),
      program: `${kind}-server`,
      args: [node.confFiles[kind]],
      logFile: this.logFile(name),
      healthUrl: `http://127.0.0.1:${node.ports[kind]}/healthcheck`,
    });
    this.processes.set(name, proc);
    return proc;
  }

  /** Starts the three servers of one node as one storage-server process and waits for all three. */
  async startStorageNode(node: StorageNode): Promise<ServerProcess> {
    const name = `storage-server-${node.index}`;
    const proc = await startProcess({
      name,
      script: binPath('storage-server'),
      program: 'storage-server',
      args: STORAGE_KINDS.flatMap((kind) => [`--${kind}`, node.confFiles[kind]]),
      logFile: this.logFile(name),
      healthUrl: STORAGE_KINDS.map((kind) => `http://127.0.0.1:${node.ports[kind]}/healthcheck`),
    });
    this.processes.set(name, proc);
    return proc;
  }

  async startProxy(): Promise<ServerProcess> {
    const proc = await startProcess({
      name: 'proxy-server',
      script: binPath('proxy-server'),
      program: 'proxy-server',
      args: [this.proxyConf],
      logFile: this.logFile('proxy-server'),
      healthUrl: `${this.endpoint}/healthcheck`,
    });
    this.processes.set('proxy-server', proc);
    return proc;
  }

  /** The object replicator and updater of one node (long-running daemons). */
  async startDaemons(node: StorageNode): Promise<void> {
    const daemons: Array<[string, string]> = [
      [`object-replicator-${node.index}`, 'object-replicator'],
      [`object-updater-${node.index}`, 'object-updater'],
    ];
    for (const [name, program] of daemons) {
      const proc = await startProcess({
        name,
        script: binPath(program),
        program,
        args: [node.confFiles.object],
        logFile: this.logFile(name),
      });
      this.processes.set(name, proc);
    }
  }

  /** Starts everything: storage servers of every node, daemons, then the proxy. */
  async start(): Promise<void> {
    try {
      if (this.opts.processPerNode) await Promise.all(this.nodes.map((node) => this.startStorageNode(node)));
      else await Promise.all(this.nodes.flatMap((node) => STORAGE_KINDS.map((kind) => this.startStorageServer(node, kind))));
      if (this.opts.daemons !== false) for (const node of this.nodes) await this.startDaemons(node);
      await this.startProxy();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops every process this cluster started (by PID, SIGTERM then SIGKILL). */
  async stop(): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => p.stop()));
    this.processes.clear();
  }
}

/** Prepares and starts a cluster in one call (the form tests use). */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const cluster = await Cluster.prepare(opts);
  await cluster.start();
  return cluster;
}
