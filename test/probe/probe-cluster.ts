/**
 * The probe tests' fixture: a whole all-in-one cluster (4 nodes, 3 replicas, so every partition
 * has a handoff) from the cluster launcher, an S3 client with the SDK's default settings, the rings
 * to find an object's primaries and handoffs, a look at the devices (Swift's diskfile layout), and
 * the object replicator and updater run with --once as processes, so that convergence is
 * deterministic instead of waiting for daemon intervals.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { binPath, startCluster, startProcess, type Cluster, type ClusterOptions, type ServerProcess, type StorageNode, type StorageServerKind } from '@swiftlet/cluster';
import { SwiftConf } from '@swiftlet/common';
import { Ring } from '@swiftlet/ring';

export interface Placement {
  part: number;
  hash: string;
  primaries: StorageNode[];
  handoffs: StorageNode[];
}

export interface OnceRun {
  name: string;
  code: number | null;
  ms: number;
}

export class Probe {
  readonly s3: S3Client;
  readonly account: string;
  private readonly conf: SwiftConf;

  private constructor(
    readonly cluster: Cluster,
    readonly dir: string,
  ) {
    const user = cluster.users[0]!;
    this.account = user.account;
    // The SDK's defaults (retries, checksums); path style only because 127.0.0.1 has no DNS names.
    this.s3 = new S3Client({
      region: 'us-east-1',
      endpoint: cluster.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: user.accessKey, secretAccessKey: user.secretKey },
    });
    this.conf = SwiftConf.load(cluster.swiftDir);
  }

  static async start(opts: Partial<ClusterOptions> = {}): Promise<Probe> {
    const dir = await mkdtemp(join(tmpdir(), 'swiftlet-probe-'));
    const cluster = await startCluster({
      dir,
      nodes: 4,
      replicas: 3,
      partPower: 6,
      daemons: false,
      ...opts,
      extraConf: {
        ...(opts.extraConf ?? {}),
        // Container replication only when a test asks for a pass (POST /_db_replicate).
        container: { 'container-replicator': { interval: 0 }, ...(opts.extraConf?.container ?? {}) },
        account: { 'account-replicator': { interval: 0 }, ...(opts.extraConf?.account ?? {}) },
      },
    });
    return new Probe(cluster, dir);
  }

  async stop(): Promise<void> {
    this.s3.destroy();
    await this.cluster.stop();
    if (process.env['SWIFTLET_KEEP_TEST_DIR'] !== '1') await rm(this.dir, { recursive: true, force: true });
  }

  node(device: string): StorageNode {
    const n = this.cluster.nodes.find((x) => x.device === device);
    if (!n) throw new Error(`no node with device ${device}`);
    return n;
  }

  server(node: StorageNode, kind: StorageServerKind): ServerProcess {
    const p = this.cluster.processes.get(`${kind}-server-${node.index}`);
    if (!p) throw new Error(`${kind}-server-${node.index} is not running`);
    return p;
  }

  /** Stops one storage server (SIGKILL when `crash`) and forgets its handle. */
  async stopServer(node: StorageNode, kind: StorageServerKind, crash = false): Promise<void> {
    const p = this.server(node, kind);
    await (crash ? p.kill() : p.stop());
    this.cluster.processes.delete(p.name);
  }

  private ring(kind: 'object' | 'container' | 'account'): Ring {
    return Ring.forKind(this.cluster.swiftDir, kind);
  }

  /** Where /account/bucket/key lives: partition, hash folder, primary and handoff nodes. */
  objectPlacement(bucket: string, key: string, account = this.account): Placement {
    const ring = this.ring('object');
    const { part, nodes } = ring.getNodes(account, bucket, key);
    const primaries = nodes.map((n) => this.node(n.device));
    const handoffs = [...ring.getMoreNodes(part)].map((n) => this.node(n.device));
    return { part, hash: this.conf.hashPath(account, bucket, key).hex, primaries, handoffs };
  }

  containerPlacement(bucket: string, account = this.account): { part: number; primaries: StorageNode[]; others: StorageNode[] } {
    const { part, nodes } = this.ring('container').getNodes(account, bucket);
    const primaries = nodes.map((n) => this.node(n.device));
    return { part, primaries, others: this.cluster.nodes.filter((n) => !primaries.includes(n)) };
  }

  accountPlacement(account = this.account): { part: number; primaries: StorageNode[] } {
    const { part, nodes } = this.ring('account').getNodes(account);
    return { part, primaries: nodes.map((n) => this.node(n.device)) };
  }

  objectPrimaryParts(node: StorageNode): Set<number> {
    const ring = this.ring('object');
    const out = new Set<number>();
    for (let p = 0; p < ring.partCount; p++) if (ring.getPartNodes(p).some((n) => n.device === node.device)) out.add(p);
    return out;
  }

  deviceDir(node: StorageNode): string {
    return join(node.devicesDir, node.device);
  }

  hashDir(node: StorageNode, p: Placement): string {
    return join(this.deviceDir(node), 'objects', String(p.part), p.hash.slice(-3), p.hash);
  }

  /** The files of an object's hash folder on one node ([] when absent). */
  async files(node: StorageNode, p: Placement): Promise<string[]> {
    return (await readdir(this.hashDir(node, p)).catch(() => [] as string[])).sort();
  }

  /** Object partitions a node holds although it is not one of their primaries. */
  async handoffPartitions(node: StorageNode): Promise<number[]> {
    const primary = this.objectPrimaryParts(node);
    const entries = await readdir(join(this.deviceDir(node), 'objects')).catch(() => [] as string[]);
    return entries.filter((e) => /^\d+$/.test(e)).map(Number).filter((p) => !primary.has(p)).sort((a, b) => a - b);
  }

  /** Hash folders in a node's quarantine. */
  async quarantined(node: StorageNode): Promise<string[]> {
    return readdir(join(this.deviceDir(node), 'quarantined', 'objects')).catch(() => [] as string[]);
  }

  /** Runs one program with --once on the given nodes in parallel; each must exit 0 within the deadline. */
  private async runOnce(program: string, nodes: StorageNode[], timeoutMs: number): Promise<OnceRun[]> {
    const runs = nodes.map(async (node): Promise<OnceRun> => {
      const name = `${program}-${node.index}-once`;
      const t0 = Date.now();
      const proc = await startProcess({
        name,
        script: binPath(program),
        args: [node.confFiles.object, '--once'],
        logFile: join(this.dir, 'log', `${name}.log`),
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
      const code = await Promise.race([proc.exited, timedOut]);
      clearTimeout(timer);
      if (code === 'timeout') {
        await proc.kill();
        throw new Error(`${name} did not finish within ${timeoutMs} ms`);
      }
      return { name, code, ms: Date.now() - t0 };
    });
    return Promise.all(runs);
  }

  replicateOnce(nodes = this.cluster.nodes, timeoutMs = 30_000): Promise<OnceRun[]> {
    return this.runOnce('object-replicator', nodes, timeoutMs);
  }

  updateOnce(nodes = this.cluster.nodes, timeoutMs = 30_000): Promise<OnceRun[]> {
    return this.runOnce('object-updater', nodes, timeoutMs);
  }

  /** One container (or account) replication pass on every running server of that kind. */
  async dbReplicateOnce(kind: 'container' | 'account'): Promise<void> {
    for (const node of this.cluster.nodes) {
      if (!this.cluster.processes.has(`${kind}-server-${node.index}`)) continue;
      const res = await fetch(`http://127.0.0.1:${node.ports[kind]}/_db_replicate`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${kind} replication pass on node ${node.index} answered ${res.status}`);
    }
  }

  /**
   * Replication passes (--once on every node) until `problems()` reports none, at most
   * `maxRounds`; returns the rounds used and what was still wrong after the last one.
   */
  async replicateUntil(problems: () => Promise<string[]>, maxRounds = 3): Promise<{ rounds: number; problems: string[] }> {
    let left: string[] = [];
    for (let round = 1; round <= maxRounds; round++) {
      for (const r of await this.replicateOnce()) if (r.code !== 0) throw new Error(`${r.name} exited with ${r.code}`);
      left = await problems();
      if (left.length === 0) return { rounds: round, problems: [] };
    }
    return { rounds: maxRounds, problems: left };
  }

  /**
   * What differs from "every key has its newest file (a .data, or a .ts when `deleted`) on each of
   * its primaries and nowhere else, and no node keeps a handoff partition".
   */
  async placementProblems(bucket: string, keys: string[], opts: { deleted?: boolean; bodies?: Map<string, Buffer> } = {}): Promise<string[]> {
    const out: string[] = [];
    const want = opts.deleted ? '.ts' : '.data';
    for (const key of keys) {
      const p = this.objectPlacement(bucket, key);
      for (const node of this.cluster.nodes) {
        const files = await this.files(node, p);
        if (!p.primaries.includes(node)) {
          if (files.length > 0) out.push(`${key}: ${files.join(',')} on non-primary ${node.device}`);
          continue;
        }
        const newest = files.filter((f) => f.endsWith('.data') || f.endsWith('.ts')).at(-1);
        if (!newest?.endsWith(want)) {
          out.push(`${key}: primary ${node.device} has [${files.join(',')}], wants a ${want}`);
          continue;
        }
        const body = opts.bodies?.get(key);
        if (body && !(await Probe.dataBody(join(this.hashDir(node, p), newest))).equals(body)) out.push(`${key}: wrong bytes on ${node.device}`);
      }
    }
    for (const node of this.cluster.nodes) {
      const parts = await this.handoffPartitions(node);
      if (parts.length > 0) out.push(`${node.device} keeps handoff partitions ${parts.join(',')}`);
    }
    return out;
  }

  async put(bucket: string, key: string, body: Buffer): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }

  async get(bucket: string, key: string): Promise<Buffer> {
    const r = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  }

  /** The body bytes of a `.data` file (body, JSON metadata, 8-byte trailer `u32be len` + `SWM1`). */
  static async dataBody(file: string): Promise<Buffer> {
    const buf = await readFile(file);
    const metaLen = buf.readUInt32BE(buf.length - 8);
    return buf.subarray(0, buf.length - 8 - metaLen);
  }
}

export function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

/** Deterministic pseudo-random bytes (distinct per seed). */
export function bytesFor(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < size; i += block.length) {
    block.copy(out, i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Keys (in order key-0, key-1, ...) whose object primaries include `node`. */
export function keysOn(probe: Probe, bucket: string, node: StorageNode, count: number, prefix = 'k'): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count && i < 10_000; i++) {
    const key = `${prefix}-${i}`;
    if (probe.objectPlacement(bucket, key).primaries.includes(node)) out.push(key);
  }
  return out;
}
