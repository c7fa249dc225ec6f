/**
 * Probe: a node that hangs (SIGSTOP), a replica whose bytes rot on disk, and a device wiped
 * clean (a replaced disk), with S3 clients reading and writing through the gateway; replication
 * (--once on every node) restores what was lost (Swift's test_object_failures,
 * test_replication_servers_working).
 */
import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { waitFor } from '@swiftlet/cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Probe, bytesFor, keysOn } from './probe-cluster.js';

const NODE_TIMEOUT_S = 1;
const CONN_TIMEOUT_S = 0.5;
let probe: Probe;

beforeAll(async () => {
  probe = await Probe.start({
    extraConf: { proxy: { 'proxy-server': { node_timeout: NODE_TIMEOUT_S, conn_timeout: CONN_TIMEOUT_S, error_suppression_interval: 1 } } },
  });
}, 90_000);

afterAll(async () => {
  await probe?.stop();
});

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await p;
  return { value, ms: Date.now() - t0 };
}

describe('failing object servers and disks', { timeout: 120_000 }, () => {
  it('a hung primary (SIGSTOP): PUT, GET and HEAD complete within the node timeout; it catches up after resume + replication', async () => {
    const bucket = 'hang';
    await probe.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const victim = probe.cluster.nodes[0]!;
    const keys = keysOn(probe, bucket, victim, 3);
    const bodies = new Map(keys.map((k) => [k, bytesFor(k, 50_000)]));
    const server = probe.server(victim, 'object');
    server.pause();
    // One request may wait the node timeout for the hung node once (plus a loaded machine's slack).
    const bound = (NODE_TIMEOUT_S + CONN_TIMEOUT_S) * 1000 + 5000;
    const times: number[] = [];
    try {
      for (const key of keys) {
        const put = await timed(probe.put(bucket, key, bodies.get(key)!));
        times.push(put.ms);
        expect(put.ms, `PUT ${key}`).toBeLessThan(bound);
      }
      for (let i = 0; i < 4; i++) {
        for (const key of keys) {
          const get = await timed(probe.get(bucket, key));
          times.push(get.ms);
          expect(get.value.equals(bodies.get(key)!), key).toBe(true);
          expect(get.ms, `GET ${key}`).toBeLessThan(bound);
          const head = await timed(probe.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })));
          expect(head.value.ContentLength).toBe(50_000);
          expect(head.ms, `HEAD ${key}`).toBeLessThan(bound);
        }
      }
    } finally {
      server.resume();
    }
    await waitFor(async () => (await fetch(`http://127.0.0.1:${victim.ports.object}/healthcheck`)).status === 200, { timeoutMs: 10_000, what: 'the resumed object server' });
    const result = await probe.replicateUntil(() => probe.placementProblems(bucket, keys, { bodies }));
    expect(result.problems).toEqual([]);
  });

  it('a replica with flipped bytes: every GET gets the right bytes (the gateway falls back to another replica), the copy is quarantined, replication restores it', async () => {
    const bucket = 'rot';
    await probe.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const key = 'rotten';
    const body = bytesFor(key, 100_000);
    await probe.put(bucket, key, body);
    const p = probe.objectPlacement(bucket, key);
    await waitFor(async () => (await Promise.all(p.primaries.map((n) => probe.files(n, p)))).every((f) => f.length === 1), { timeoutMs: 5000, what: 'three replicas' });
    const victim = p.primaries[0]!;
    const [dataFile] = await probe.files(victim, p);
    const fh = await open(join(probe.hashDir(victim, p), dataFile!), 'r+');
    try {
      const bytes = Buffer.alloc(16);
      await fh.read(bytes, 0, 16, 40_000);
      for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0xff;
      await fh.write(bytes, 0, 16, 40_000);
    } finally {
      await fh.close();
    }

    // The proxy picks primaries in random order: read until the rotten copy was met (bounded).
    let good = 0;
    let failed = 0;
    let wrong = 0;
    const deadline = Date.now() + 30_000;
    for (let i = 0; i < 40 && Date.now() < deadline; i++) {
      try {
        const got = await probe.get(bucket, key);
        if (got.equals(body)) good++;
        else wrong++;
      } catch {
        failed++;
      }
      if ((await probe.quarantined(victim)).includes(p.hash)) break;
    }
    expect(wrong).toBe(0);
    expect(await probe.quarantined(victim)).toContain(p.hash);
    expect(await probe.files(victim, p)).toEqual([]);
    // After the quarantine every read is whole and right.
    for (let i = 0; i < 5; i++) expect((await probe.get(bucket, key)).equals(body)).toBe(true);
    expect({ good: good > 0, wrong }).toEqual({ good: true, wrong: 0 });
    // Not even the read that met the rotten copy failed: the gateway continued from another replica.
    expect(failed).toBe(0);

    const result = await probe.replicateUntil(() => probe.placementProblems(bucket, [key], { bodies: new Map([[key, body]]) }));
    expect(result.problems).toEqual([]);
  });

  it('a wiped device (disk replaced): replication puts every object back on its primaries; listings still complete', async () => {
    const bucket = 'wipe';
    await probe.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const victim = probe.cluster.nodes[3]!;
    const keys = Array.from({ length: 20 }, (_, i) => `w-${i}`);
    const bodies = new Map(keys.map((k, i) => [k, bytesFor(k, 1000 + i * 997)]));
    for (const key of keys) await probe.put(bucket, key, bodies.get(key)!);
    const onVictim = keys.filter((k) => probe.objectPlacement(bucket, k).primaries.includes(victim));
    expect(onVictim.length).toBeGreaterThan(5);
    await waitFor(async () => (await probe.placementProblems(bucket, keys, { bodies })).length === 0, { timeoutMs: 10_000, what: 'every replica written' });

    for (const kind of ['object', 'container', 'account'] as const) await probe.stopServer(victim, kind);
    const dev = probe.deviceDir(victim);
    for (const entry of await readdir(dev)) await rm(join(dev, entry), { recursive: true, force: true });
    for (const kind of ['object', 'container', 'account'] as const) await probe.cluster.startStorageServer(victim, kind);
    for (const key of onVictim) expect(await probe.files(victim, probe.objectPlacement(bucket, key))).toEqual([]);

    const result = await probe.replicateUntil(() => probe.placementProblems(bucket, keys, { bodies }));
    expect(result.problems).toEqual([]);
    expect(result.rounds).toBeLessThanOrEqual(2);
    for (const key of keys) expect((await probe.get(bucket, key)).equals(bodies.get(key)!), key).toBe(true);

    // The container databases of the wiped node come back through container replication.
    await probe.dbReplicateOnce('container');
    await probe.dbReplicateOnce('account');
    for (let i = 0; i < 4; i++) {
      const list = await probe.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect((list.Contents ?? []).map((c) => c.Key).sort()).toEqual([...keys].sort());
    }
  });
});
