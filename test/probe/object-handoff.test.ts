/**
 * Probe: object servers that go away (missing device, down during a DELETE) while S3
 * clients keep writing and reading; then the replicators (--once on every node) put every replica
 * back on its primaries and empty the handoffs (Swift's test_object_handoff, test_stale_reads).
 */
import { rename } from 'node:fs/promises';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type StorageNode } from '@swiftlet/cluster';
import { Probe, bytesFor, keysOn } from './probe-cluster.js';

let probe: Probe;

beforeAll(async () => {
  probe = await Probe.start({
    // A restarted node is tried again one second after its last error (not after Swift's 60 s),
    // so that reads after a restart really ask it.
    extraConf: { proxy: { 'proxy-server': { error_suppression_interval: 1, node_timeout: 3, conn_timeout: 0.5 } } },
  });
}, 90_000);

afterAll(async () => {
  await probe?.stop();
});

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof S3ServiceException) return err.$metadata.httpStatusCode ?? 0;
    throw err;
  }
}

describe('object servers going away', { timeout: 120_000 }, () => {
  it('a primary whose device folder is missing (507): PUT lands on a handoff, GET finds it even with every primary away; replication moves it to the primaries', async () => {
    const bucket = 'nodevice';
    await probe.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const victim = probe.cluster.nodes[1]!;
    // Every S3 request reads the bucket's row in the registry (an ordinary object): pick a key
    // whose handoff also holds that row, so the bucket stays usable with three servers away.
    const registry = probe.objectPlacement('buckets', bucket, '.s3_buckets');
    const key = keysOn(probe, bucket, victim, 30).find((k) => registry.primaries.includes(probe.objectPlacement(bucket, k).handoffs[0]!));
    expect(key).toBeDefined();
    const p = probe.objectPlacement(bucket, key!);
    const devs = (q: typeof p): string => q.primaries.map((n) => n.device).sort().join();
    const missing = Array.from({ length: 200 }, (_, i) => `missing-${i}`).find((k) => devs(probe.objectPlacement(bucket, k)) === devs(p));
    expect(missing).toBeDefined();
    const body = bytesFor('nodevice', 30_000);
    // The node's container and account servers share the device folder: stopped while it is gone.
    await probe.stopServer(victim, 'container');
    await probe.stopServer(victim, 'account');
    const dev = probe.deviceDir(victim);
    await rename(dev, `${dev}.away`);
    try {
      const health = await fetch(`http://127.0.0.1:${victim.ports.object}/${victim.device}/${p.part}/${probe.account}/${bucket}/${key}`, { method: 'HEAD' });
      expect(health.status).toBe(507);
      await probe.put(bucket, key!, body);
      expect((await probe.get(bucket, key!)).equals(body)).toBe(true);
      // The handoff took the victim's replica (polled: the proxy answers once a quorum wrote).
      await waitFor(async () => (await probe.files(p.handoffs[0]!, p)).some((f) => f.endsWith('.data')), { timeoutMs: 5000, what: `the copy on handoff ${p.handoffs[0]!.device}` });

      // All three primaries unusable: the handoff alone serves the object; a key no node has is
      // 503 (the primaries could not answer), never a 404 (Swift's test_missing_primaries).
      const others = p.primaries.filter((n) => n !== victim);
      for (const n of others) await probe.stopServer(n, 'object');
      try {
        expect((await probe.get(bucket, key!)).equals(body)).toBe(true);
        expect(await status(probe.s3.send(new GetObjectCommand({ Bucket: bucket, Key: missing })))).toBe(503);
      } finally {
        for (const n of others) await probe.cluster.startStorageServer(n, 'object');
      }
    } finally {
      await rename(`${dev}.away`, dev);
      await probe.cluster.startStorageServer(victim, 'container');
      await probe.cluster.startStorageServer(victim, 'account');
    }
    expect(await probe.files(victim, p)).toEqual([]);
    const result = await probe.replicateUntil(() => probe.placementProblems(bucket, [key!], { bodies: new Map([[key!, body]]) }));
    expect(result.problems).toEqual([]);
    expect((await probe.get(bucket, key!)).equals(body)).toBe(true);
  });

  // The proxy asks a read quorum of primaries (consistent_reads, on by default): a primary that
  // missed the DELETE is outvoted by the newer tombstone another primary holds. Swift uses the
  // first good answer and serves the old data here whenever the shuffled order asks that node first.
  it('stale read: a primary that missed the DELETE comes back with the old data; GET and HEAD answer 404 before replication', async () => {
    const bucket = 'stale';
    await probe.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const victim = probe.cluster.nodes[2]!;
    const [key] = keysOn(probe, bucket, victim, 1);
    const p = probe.objectPlacement(bucket, key!);
    await probe.put(bucket, key!, bytesFor('stale', 5000));
    await waitFor(async () => (await probe.files(victim, p)).length === 1, { timeoutMs: 5000, what: 'the copy on the victim' });

    await probe.stopServer(victim, 'object');
    expect(await status(probe.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })))).toBe(200);
    await probe.cluster.startStorageServer(victim, 'object');
    // Before replication: the victim still holds the .data, the others the newer tombstone.
    expect((await probe.files(victim, p)).filter((f) => f.endsWith('.data'))).toHaveLength(1);
    // The proxy tries primaries in random order; a dozen reads meet the stale one first several times.
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      seen.push(await status(probe.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))));
      seen.push(await status(probe.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))));
    }
    expect(seen.every((s) => s === 404), seen.join(',')).toBe(true);
  });

  it('a DELETE missed by a stopped primary reaches it through replication; the object never comes back', async () => {
    const bucket = 'stale';
    const victim = probe.cluster.nodes[2]!;
    const [key] = keysOn(probe, bucket, victim, 1);
    // The previous test left the victim with the old .data and the others with the tombstone.
    const p = probe.objectPlacement(bucket, key!);
    expect((await probe.files(victim, p)).filter((f) => f.endsWith('.data'))).toHaveLength(1);
    const result = await probe.replicateUntil(() => probe.placementProblems(bucket, [key!], { deleted: true }));
    expect(result.problems).toEqual([]);
    for (let i = 0; i < 6; i++) expect(await status(probe.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })))).toBe(404);
  });

  it('split brain: a DELETE on one half, then a newer PUT on the other; after replication the newer PUT wins everywhere', async () => {
    const bucket = 'splitbrain';
    await probe.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const key = 'sb';
    const p = probe.objectPlacement(bucket, key);
    const [a, b, c] = p.primaries as [StorageNode, StorageNode, StorageNode];
    await probe.put(bucket, key, bytesFor('sb-1', 3000));
    await waitFor(async () => (await probe.files(a, p)).length === 1, { timeoutMs: 5000, what: 'the first copy on a' });

    // Half one (b, c and the handoff) sees the DELETE while a is down.
    await probe.stopServer(a, 'object');
    expect(await status(probe.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })))).toBe(200);
    await probe.cluster.startStorageServer(a, 'object');
    // Half two (a and the handoff) sees a newer PUT while b and c are down.
    const v2 = bytesFor('sb-2', 4000);
    await probe.stopServer(b, 'object');
    await probe.stopServer(c, 'object');
    try {
      await probe.put(bucket, key, v2);
      expect((await probe.get(bucket, key)).equals(v2)).toBe(true);
    } finally {
      await probe.cluster.startStorageServer(b, 'object');
      await probe.cluster.startStorageServer(c, 'object');
    }
    const result = await probe.replicateUntil(() => probe.placementProblems(bucket, [key], { bodies: new Map([[key, v2]]) }));
    expect(result.problems).toEqual([]);
    for (const n of p.primaries) expect((await probe.files(n, p)).filter((f) => f.endsWith('.ts')), n.device).toEqual([]);
    for (let i = 0; i < 4; i++) expect((await probe.get(bucket, key)).equals(v2)).toBe(true);
  });
});
