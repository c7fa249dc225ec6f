/**
 * Probe: an object server crashes (SIGKILL) while S3 clients stream PUTs; every acknowledged object
 * reads back, and the replicators (--once on every node) put the missed replicas on the restarted
 * primary and empty the handoffs (Swift's test_object_handoff).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { waitFor } from '@swiftlet/cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Probe, bytesFor } from './probe-cluster.js';

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

describe('an object server crashing', { timeout: 120_000 }, () => {
  it('a primary crashes during 50 PUTs: every acknowledged object reads back; replication restores 3 replicas and empties the handoffs', async () => {
    const bucket = 'stream';
    await probe.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const victim = probe.cluster.nodes[0]!;
    const keys = Array.from({ length: 50 }, (_, i) => `obj-${i}`);
    const bodies = new Map(keys.map((k, i) => [k, bytesFor(k, 1 + ((i * 7919) % 40_000))]));
    const acked: string[] = [];
    const failed: string[] = [];
    let crash: Promise<void> | undefined;
    // Four writers; the victim's object server is killed (SIGKILL) while PUTs are in flight.
    let next = 0;
    const writer = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keys[next++]!;
        if (next === 12) crash = probe.stopServer(victim, 'object', true);
        try {
          await probe.put(bucket, key, bodies.get(key)!);
          acked.push(key);
        } catch {
          failed.push(key);
        }
      }
    };
    await Promise.all([writer(), writer(), writer(), writer()]);
    await crash;
    expect(failed).toEqual([]);
    expect(acked).toHaveLength(50);
    const onVictim = keys.filter((k) => probe.objectPlacement(bucket, k).primaries.includes(victim));
    expect(onVictim.length).toBeGreaterThan(10);

    try {
      for (const key of acked) expect((await probe.get(bucket, key)).equals(bodies.get(key)!), key).toBe(true);
      // Each replica the victim missed sits on the partition's handoff instead.
      let onHandoff = 0;
      for (const key of onVictim) {
        const p = probe.objectPlacement(bucket, key);
        const copies = (await probe.files(victim, p)).length + (await probe.files(p.handoffs[0]!, p)).length;
        // A PUT in flight at the crash may have no third copy until replication; or two, when the
        // victim made its copy durable but died before answering, and the gateway (small PUTs are
        // resent on an error) wrote the same bytes to the handoff as well. Never more.
        expect(copies, key).toBeLessThanOrEqual(2);
        if ((await probe.files(p.handoffs[0]!, p)).length === 1) onHandoff++;
      }
      expect(onHandoff).toBeGreaterThan(5);
    } finally {
      // Restarted even when a check fails, so that the next test finds every server up.
      await probe.cluster.startStorageServer(victim, 'object');
    }
    const result = await probe.replicateUntil(() => probe.placementProblems(bucket, keys, { bodies }));
    expect(result.problems).toEqual([]);
    expect(result.rounds).toBeLessThanOrEqual(2);
    for (const key of acked) expect((await probe.get(bucket, key)).equals(bodies.get(key)!), key).toBe(true);
  });

  it('two primaries crash while six clients are mid-way through a 16 MiB GET: every client gets the whole object (the gateway continues from the third replica)', async () => {
    const bucket = 'bigread';
    await probe.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const key = 'big';
    // Larger than what the sockets of two hops buffer, so that the backends are really mid-body.
    const body = bytesFor(key, 16 * 1024 * 1024);
    await probe.put(bucket, key, body);
    const p = probe.objectPlacement(bucket, key);
    await waitFor(async () => (await Promise.all(p.primaries.map((n) => probe.files(n, p)))).every((f) => f.length === 1), { timeoutMs: 10_000, what: 'three replicas' });

    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    let started = 0;
    // Each reader takes 64 KiB, then waits: back pressure holds the backend streams mid-body.
    const readers = Array.from({ length: 6 }, async () => {
      const r = await probe.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const chunks: Buffer[] = [];
      let n = 0;
      let waited = false;
      for await (const c of r.Body as Readable) {
        chunks.push(c as Buffer);
        n += (c as Buffer).length;
        if (!waited && n >= 65_536) {
          waited = true;
          started++;
          await gate;
        }
      }
      return Buffer.concat(chunks);
    });
    const settled = Promise.allSettled(readers);
    await waitFor(() => started === 6, { timeoutMs: 20_000, what: 'six readers mid-body' });
    const victims = p.primaries.slice(0, 2);
    for (const v of victims) await probe.stopServer(v, 'object', true);
    openGate();
    const results = await settled;
    for (const v of victims) await probe.cluster.startStorageServer(v, 'object');
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? (r.value.equals(body) ? 'whole' : `wrong ${r.value.length} bytes`) : `error ${String(r.reason)}`));
    expect(outcomes).toEqual(Array(6).fill('whole'));
    // With six readers spread over three replicas, some streams came from the killed servers.
    const log = await readFile(join(probe.dir, 'log', 'proxy-server.log'), 'utf8');
    expect(log).toContain('continuing from another replica');
  });
});
