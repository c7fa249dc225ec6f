/**
 * Database replication between real container servers: a replica that missed updates (rows,
 * deletions, metadata) while down is brought up to date by a pass, a second pass finds the
 * replicas in sync, and a handoff container is pushed to its primaries and removed.
 * Ring: 4 servers, 3 replicas, partition p on servers p, p+1, p+2 (mod 4); partition 0's handoff
 * is server 3.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbCluster, req, ts, type DbNode } from './db-cluster.js';

let cluster: DbCluster;
const node = (i: number): DbNode => cluster.containers[i] as DbNode;

beforeAll(async () => {
  cluster = await DbCluster.start({ containers: 4, accounts: 0, containerReplicas: 3 });
});
afterAll(async () => {
  await cluster?.stop();
});

type Row = { name: string; hash: string; bytes: number };
const listing = async (n: DbNode, c: string) => {
  const r = await req(n, 'GET', [0, 'AUTH_r', c], { query: { format: 'json' } });
  return { status: r.status, rows: r.status === 200 ? r.json<Row[]>() : [], count: r.headers.get('x-container-object-count'), bytes: r.headers.get('x-container-bytes-used'), meta: r.headers.get('x-container-meta-m') };
};
const putRow = (n: DbNode, c: string, o: string, size: number, t: string) =>
  req(n, 'PUT', [0, 'AUTH_r', c, o], { headers: { 'x-timestamp': t, 'x-size': String(size), 'x-content-type': 'a/b', 'x-etag': `e${size}` } });
async function pass(n: DbNode): Promise<{ stats: Record<string, number>; jobs: number }> {
  const r = await fetch(`http://127.0.0.1:${n.port}/_db_replicate`, { method: 'POST' });
  expect(r.status).toBe(200);
  return (await r.json()) as { stats: Record<string, number>; jobs: number };
}

describe('container database replication', () => {
  it('brings a replica that missed rows, deletions and metadata up to date', async () => {
    for (const i of [0, 1, 2]) expect((await req(node(i), 'PUT', [0, 'AUTH_r', 'c'], { headers: { 'x-timestamp': ts() } })).status).toBe(201);
    const tOld = ts();
    for (const i of [0, 1, 2]) expect((await putRow(node(i), 'c', 'old', 1, tOld)).status).toBe(201);
    await cluster.stopNode(node(2));
    const stamps = Array.from({ length: 60 }, () => ts());
    for (const i of [0, 1]) {
      for (let k = 0; k < 60; k++) expect((await putRow(node(i), 'c', `o${String(k).padStart(2, '0')}`, k, stamps[k] as string)).status).toBe(201);
    }
    const tDel = ts();
    const tMeta = ts();
    for (const i of [0, 1]) {
      expect((await req(node(i), 'DELETE', [0, 'AUTH_r', 'c', 'old'], { headers: { 'x-timestamp': tDel } })).status).toBe(204);
      expect((await req(node(i), 'POST', [0, 'AUTH_r', 'c'], { headers: { 'x-timestamp': tMeta, 'x-container-meta-m': 'v' } })).status).toBe(204);
    }
    await cluster.startNode(node(2));
    const before = await listing(node(2), 'c');
    expect(before.rows.map((r) => r.name)).toEqual(['old']);

    const first = await pass(node(0));
    expect(first.stats['diff']).toBeGreaterThanOrEqual(1);
    const want = await listing(node(0), 'c');
    const got = await listing(node(2), 'c');
    expect(got.rows).toEqual(want.rows);
    expect(got.rows).toHaveLength(60);
    expect([got.count, got.bytes, got.meta]).toEqual(['60', String((59 * 60) / 2), 'v']);

    // in sync now: the next pass sends nothing
    const second = await pass(node(0));
    expect(second.stats['diff']).toBe(0);
    expect(second.stats['hashmatch']).toBeGreaterThanOrEqual(2);
    // a newer tombstone on the repaired replica travels back
    expect((await req(node(2), 'DELETE', [0, 'AUTH_r', 'c', 'o00'], { headers: { 'x-timestamp': ts() } })).status).toBe(204);
    await pass(node(2));
    for (const i of [0, 1]) expect((await listing(node(i), 'c')).count).toBe('59');
  });

  it('pushes a handoff container to its primaries, then removes it', async () => {
    expect((await req(node(3), 'PUT', [0, 'AUTH_r', 'h'], { headers: { 'x-timestamp': ts(), 'x-container-sysmeta-owner': 'bob' } })).status).toBe(201);
    for (let k = 0; k < 10; k++) expect((await putRow(node(3), 'h', `x${k}`, 10, ts())).status).toBe(201);
    for (const i of [0, 1, 2]) expect((await listing(node(i), 'h')).status).toBe(404);
    const summary = await pass(node(3));
    expect(summary.stats['remove']).toBe(1);
    for (const i of [0, 1, 2]) {
      const l = await listing(node(i), 'h');
      expect([l.status, l.count, l.bytes, l.rows.length]).toEqual([200, '10', '100', 10]);
      expect((await req(node(i), 'HEAD', [0, 'AUTH_r', 'h'])).headers.get('x-container-sysmeta-owner')).toBe('bob');
    }
    expect((await req(node(3), 'HEAD', [0, 'AUTH_r', 'h'])).status).toBe(404);
  });

  it('refuses hostile replication requests', async () => {
    const url = `http://127.0.0.1:${node(0).port}/_db_replicate/${node(0).device}/0/AUTH_r/c`;
    expect((await fetch(`${url}?op=rows`, { method: 'POST', body: 'not json' })).status).toBe(400);
    expect((await fetch(`${url}?op=rows`, { method: 'POST', body: JSON.stringify(['n', 0, '["never", 1, 1, "a", "e"]']) })).status).toBe(400);
    expect((await fetch(`${url}?op=sync`, { method: 'POST', body: '{}' })).status).toBe(400);
    expect((await fetch(`${url}?op=nope`, { method: 'POST', body: '' })).status).toBe(400);
    expect((await listing(node(0), 'c')).count).toBe('59');
  });
});
