/**
 * swiftlet-storage-server: a node's object, container and account servers in one process, started
 * by the cluster launcher (processPerNode), with the object server's workers forked beside the
 * database servers, and its refusals of bad command lines.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { binPath } from '@swiftlet/cluster';
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
