/**
 * swiftlet-storage-server: a node's object, container and account servers in one process, started
 * by the cluster launcher (processPerNode), with the object server's workers forked beside the
 * database servers, and its refusals of bad command lines.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { binPath } from '@swiftlet/cluster';
import { asyncPendingDirName } from '@swiftlet/object-server';
import { s3Client, startS3Cluster, type S3Cluster } from '../s3/helpers.js';

const run = promisify(execFile);

function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

async function roundTrip(s3c: S3Cluster, bucket: string): Promise<void> {
  const s3 = s3Client(s3c.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const bodies = new Map([
    ['a/one', Buffer.from('first object')],
    ['b/two', Buffer.alloc(70_000, 7)],
  ]);
  for (const [key, body] of bodies) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  for (const [key, body] of bodies) {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
  }
  // The listing comes from the container servers, the bucket list from the account servers.
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  expect(listed.Contents?.map((c) => [c.Key, c.Size])).toEqual([...bodies].map(([k, b]) => [k, b.length]));
  const buckets = await s3.send(new ListBucketsCommand({}));
  expect(buckets.Buckets?.map((b) => b.Name)).toContain(bucket);
}

/** An object row's backend path: /<device>/<partition>/<account>/<container>/<object>. */
const OBJECT_ROW_PATH = /^\/[^/]+\/\d+\/[^/]+\/[^/]+\/.+/;

function logLines(s3c: S3Cluster, node: number): Record<string, unknown>[] {
  return readFileSync(join(s3c.cluster.dir, 'log', `storage-server-${node}.log`), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('one process per storage node', () => {
  let s3c: S3Cluster;
  beforeAll(async () => {
    s3c = await startS3Cluster({ processPerNode: true });
  }, 120_000);
  afterAll(async () => s3c?.stop());

  it('serves the object, container and account APIs of its node: S3 objects, listings and buckets', async () => {
    expect([...s3c.cluster.processes.keys()].sort()).toEqual(['proxy-server', 'storage-server-1', 'storage-server-2', 'storage-server-3']);
    for (const node of [1, 2, 3]) expect(childrenOf(s3c.cluster.processes.get(`storage-server-${node}`)!.pid)).toEqual([]);
    await roundTrip(s3c, 'pernode');
  });

  it("applies its object servers' container updates in-process: listings follow, no HTTP request to itself", async () => {
    await roundTrip(s3c, 'inprocess');
    // 3 nodes, 3 replicas: every object replica's node also holds a container replica, and the
    // proxy pairs each object slot with the container replica of its own device.
    let objectPuts = 0;
    for (const node of s3c.cluster.nodes) {
      const lines = logLines(s3c, node.index);
      objectPuts += lines.filter((l) => l['component'] === 'object-server' && l['log'] === 'access' && l['method'] === 'PUT').length;
      const rowUpdates = lines.filter((l) => l['component'] === 'container-server' && l['msg'] === 'request' && OBJECT_ROW_PATH.test(String(l['path'])));
      expect(rowUpdates.map((l) => `${String(l['method'])} ${String(l['path'])}`)).toEqual([]);
    }
    expect(objectPuts).toBeGreaterThanOrEqual(6);
  });

  it('an in-process update the container server refuses (no such container) becomes an async pending', async () => {
    const node = s3c.cluster.nodes[0]!;
    const objectPath = `/${node.device}/3/AUTH_nobody/no-such-container/obj`;
    const res = await fetch(`http://127.0.0.1:${node.ports.object}${objectPath}`, {
      method: 'PUT',
      body: 'orphan',
      headers: {
        'X-Timestamp': '1700000000.00000',
        'Content-Type': 'text/plain',
        'X-Container-Host': `127.0.0.1:${node.ports.container}`,
        'X-Container-Device': node.device,
        'X-Container-Partition': '5',
      },
    });
    expect(res.status).toBe(201);
    const pendings = join(node.devicesDir, node.device, asyncPendingDirName(0));
    await expect.poll(() => (existsSync(pendings) ? readdirSync(pendings, { recursive: true }).length : 0), { timeout: 10_000 }).toBeGreaterThan(0);
    const refused = logLines(s3c, node.index).find((l) => l['msg'] === 'container update refused' && String(l['path']).includes('no-such-container'));
    expect(refused?.['status']).toBe(404);
    // It went to the container server in-process, not over HTTP.
    expect(logLines(s3c, node.index).filter((l) => l['component'] === 'container-server' && String(l['path']).includes('no-such-container'))).toEqual([]);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    // A grace longer than the launcher's 5 s: an object server drains late container updates
    // for up to 10 s, which a loaded test machine can need.
    const procs = [...s3c.cluster.processes.values()].filter((p) => p.name.startsWith('storage-server-'));
    await Promise.all(procs.map((p) => p.stop(30_000)));
    for (const p of procs) expect({ name: p.name, code: await p.exited }).toEqual({ name: p.name, code: 0 });
    await s3c.cluster.stop();
  });
});

describe('one process per storage node, with object server workers', () => {
  let s3c: S3Cluster;
  beforeAll(async () => {
    s3c = await startS3Cluster({ processPerNode: true, extraConf: { object: { DEFAULT: { workers: 2 } } } });
  }, 120_000);
  afterAll(async () => s3c?.stop());

  it('forks the object server\'s workers and keeps the databases in the primary; SIGTERM ends them all', async () => {
    const primary = s3c.cluster.processes.get('storage-server-1')!;
    await expect.poll(() => childrenOf(primary.pid).length, { timeout: 15_000 }).toBe(2);
    const workers = childrenOf(primary.pid);
    await roundTrip(s3c, 'workers');
    await primary.stop(30_000);
    expect(await primary.exited).toBe(0);
    await s3c.cluster.stop();
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe('swiftlet-storage-server refuses bad command lines', () => {
  const bin = binPath('storage-server');
  const fails = async (args: string[]): Promise<{ code: number; stderr: string }> => {
    try {
      await run(process.execPath, [bin, ...args]);
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { code: e.code, stderr: e.stderr };
    }
    throw new Error(`swiftlet-storage-server ${args.join(' ')} succeeded`);
  };

  it('no server named: usage, exit 2', async () => {
    const { code, stderr } = await fails([]);
    expect(code).toBe(2);
    expect(stderr).toContain('usage: swiftlet-storage-server [--object CONF] [--container CONF] [--account CONF]');
  });

  it('an unknown option or a positional argument: the reason and usage, exit 2', async () => {
    const unknown = await fails(['--objects', '/etc/swiftlet/object-server.conf']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--objects'");
    const positional = await fails(['/etc/swiftlet/object-server.conf']);
    expect(positional.code).toBe(2);
    expect(positional.stderr).toContain('usage: swiftlet-storage-server');
  });

  it('a config file that cannot be read: exit 2 before any server starts', async () => {
    const { code, stderr } = await fails(['--container', '/nonexistent/container-server.conf']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^swiftlet-storage-server: .*\/nonexistent\/container-server\.conf/m);
  });
});
