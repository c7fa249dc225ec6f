/**
 * Probe: S3 listings survive container-server outages. Object PUTs succeed while every container
 * replica of the bucket is down (the object servers keep async pendings); the object updaters
 * (--once) deliver them; a container replica that missed updates converges through container
 * replication (Swift's test_object_async_update, test_container_failures).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { StorageNode } from '@swiftlet/cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Probe, bytesFor } from './probe-cluster.js';

let probe: Probe;
const BUCKET = 'listing';

beforeAll(async () => {
  probe = await Probe.start({
    extraConf: {
      // The gateway keeps what it learnt of the bucket's container while its servers are down.
      proxy: { 'proxy-server': { recheck_container_existence: 600, recheck_account_existence: 600, node_timeout: 2, conn_timeout: 0.5 } },
      container: { 'container-updater': { account_update_delay: 0.1 } },
    },
  });
}, 90_000);

afterAll(async () => {
  await probe?.stop();
});

interface Row {
  name: string;
  bytes: number;
}

async function backendListing(node: StorageNode, part: number): Promise<{ status: number; rows: Row[]; count?: string; bytes?: string }> {
  const res = await fetch(`http://127.0.0.1:${node.ports.container}/${node.device}/${part}/${probe.account}/${BUCKET}?format=json`, {
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  const rows = res.status === 200 ? (JSON.parse(text) as Row[]) : [];
  return {
    status: res.status,
    rows,
    count: res.headers.get('x-container-object-count') ?? undefined,
    bytes: res.headers.get('x-container-bytes-used') ?? undefined,
  };
}

async function asyncPendings(node: StorageNode): Promise<number> {
  const dir = join(probe.deviceDir(node), 'async_pending');
  let n = 0;
  for (const suffix of await readdir(dir).catch(() => [] as string[])) n += (await readdir(join(dir, suffix)).catch(() => [] as string[])).length;
  return n;
}

async function listKeys(): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 20; page++) {
    const r = await probe.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token, MaxKeys: 25 }));
    keys.push(...(r.Contents ?? []).map((c) => c.Key!));
    if (!r.IsTruncated) break;
    token = r.NextContinuationToken;
  }
  return keys.sort();
}

describe('container servers going away', { timeout: 120_000 }, () => {
  const bodies = new Map<string, Buffer>();

  it('every container replica of the bucket down during 30 PUTs: async pendings, then the updaters fix every replica and the account totals', async () => {
    await probe.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await probe.s3.send(new HeadBucketCommand({ Bucket: BUCKET }));
    const { part, primaries } = probe.containerPlacement(BUCKET);
    // Warm the gateway's view of the bucket (owner lookup, container existence) before the outage.
    await probe.put(BUCKET, 'warm', Buffer.from('w'));
    bodies.set('warm', Buffer.from('w'));
    const pendingsBefore = (await Promise.all(probe.cluster.nodes.map(asyncPendings))).reduce((a, b) => a + b, 0);

    for (const node of primaries) await probe.stopServer(node, 'container');
    try {
      for (let i = 0; i < 29; i++) {
        const key = `o-${String(i).padStart(2, '0')}`;
        const body = bytesFor(key, 100 + i * 31);
        await probe.put(BUCKET, key, body);
        bodies.set(key, body);
      }
    } finally {
      for (const node of primaries) await probe.cluster.startStorageServer(node, 'container');
    }
    const pendings = (await Promise.all(probe.cluster.nodes.map(asyncPendings))).reduce((a, b) => a + b, 0);
    // Every object replica failed to update the listing: one pending per replica written.
    expect(pendings - pendingsBefore).toBeGreaterThanOrEqual(29 * 2);
    expect(await listKeys()).toEqual(['warm']);

    for (const r of await probe.updateOnce()) expect(r.code, r.name).toBe(0);
    expect((await Promise.all(probe.cluster.nodes.map(asyncPendings))).reduce((a, b) => a + b, 0)).toBe(pendingsBefore);

    const want = [...bodies.keys()].sort();
    const bytes = [...bodies.values()].reduce((a, b) => a + b.length, 0);
    expect(want).toHaveLength(30);
    for (let i = 0; i < 3; i++) expect(await listKeys()).toEqual(want);
    const sizes = await probe.s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(Object.fromEntries((sizes.Contents ?? []).map((c) => [c.Key, c.Size]))).toEqual(Object.fromEntries([...bodies].map(([k, b]) => [k, b.length])));
    for (const node of primaries) {
      const l = await backendListing(node, part);
      expect(l.rows.map((r) => r.name), node.device).toEqual(want);
      expect({ count: l.count, bytes: l.bytes }).toEqual({ count: '30', bytes: String(bytes) });
    }
    // The account totals follow (the container servers update the account after a short delay).
    const { part: apart, primaries: aprims } = probe.accountPlacement();
    const deadline = Date.now() + 20_000;
    let last = '';
    for (let i = 0; i < 200 && Date.now() < deadline; i++) {
      const heads = await Promise.all(
        aprims.map(async (n) => {
          const res = await fetch(`http://127.0.0.1:${n.ports.account}/${n.device}/${apart}/${probe.account}`, { method: 'HEAD' });
          return `${res.headers.get('x-account-object-count')}/${res.headers.get('x-account-bytes-used')}`;
        }),
      );
      last = heads.join(' ');
      if (heads.every((h) => h === `30/${bytes}`)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(last, 'account totals on its three replicas').toBe([0, 1, 2].map(() => `30/${bytes}`).join(' '));
  });

  it('a container replica that missed updates converges after a container replication pass', async () => {
    const { part, primaries } = probe.containerPlacement(BUCKET);
    const victim = primaries[0]!;
    await probe.stopServer(victim, 'container');
    try {
      for (let i = 0; i < 10; i++) {
        const key = `late-${i}`;
        const body = bytesFor(key, 500 + i);
        await probe.put(BUCKET, key, body);
        bodies.set(key, body);
      }
    } finally {
      await probe.cluster.startStorageServer(victim, 'container');
    }
    const want = [...bodies.keys()].sort();
    const bytes = [...bodies.values()].reduce((a, b) => a + b.length, 0);
    // No updater runs here: only replication can bring the ten rows to the victim.
    expect((await backendListing(victim, part)).rows).toHaveLength(30);
    await probe.dbReplicateOnce('container');
    for (const node of primaries) {
      const l = await backendListing(node, part);
      expect(l.rows.map((r) => r.name), node.device).toEqual(want);
      expect({ count: l.count, bytes: l.bytes }, node.device).toEqual({ count: '40', bytes: String(bytes) });
    }
    for (let i = 0; i < 3; i++) expect(await listKeys()).toEqual(want);
  });

  it('a hung container server (SIGSTOP): PUTs still answer within the container update timeout; the updaters complete its replica after resume', async () => {
    const { part, primaries } = probe.containerPlacement(BUCKET);
    const victim = primaries[1]!;
    const server = probe.server(victim, 'container');
    server.pause();
    const times: number[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const key = `hung-${i}`;
        const body = bytesFor(key, 700 + i);
        const t0 = Date.now();
        await probe.put(BUCKET, key, body);
        times.push(Date.now() - t0);
        bodies.set(key, body);
      }
    } finally {
      server.resume();
    }
    // container_update_timeout (1 s) plus a loaded machine's slack; never the hung server's forever.
    expect(Math.max(...times), times.join(',')).toBeLessThan(7000);
    for (const r of await probe.updateOnce()) expect(r.code, r.name).toBe(0);
    const want = [...bodies.keys()].sort();
    for (const node of primaries) expect((await backendListing(node, part)).rows.map((r) => r.name), node.device).toEqual(want);
    expect(await listKeys()).toEqual(want);
  });
});
