/**
 * Account database replication between two real account servers: container rows (live and
 * deleted) and account metadata one replica missed reach it in one pass.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbCluster, req, ts, type DbNode } from './db-cluster.js';

let cluster: DbCluster;
const node = (i: number): DbNode => cluster.accounts[i] as DbNode;

beforeAll(async () => {
  cluster = await DbCluster.start({ containers: 0, accounts: 2 });
});
afterAll(async () => {
  await cluster?.stop();
});

describe('account database replication', () => {
  it('sends the container rows and metadata a replica lacks', async () => {
    const t0 = ts();
    for (const i of [0, 1]) expect((await req(node(i), 'PUT', [1, 'AUTH_q'], { headers: { 'x-timestamp': t0 } })).status).toBe(201);
    const row = (c: string, h: Record<string, string>) => req(node(0), 'PUT', [1, 'AUTH_q', c], { headers: h });
    expect((await row('b1', { 'x-put-timestamp': ts(), 'x-object-count': '2', 'x-bytes-used': '20' })).status).toBe(201);
    expect((await row('b2', { 'x-put-timestamp': ts(), 'x-object-count': '1', 'x-bytes-used': '1' })).status).toBe(201);
    expect((await row('b2', { 'x-delete-timestamp': ts(), 'x-object-count': '0', 'x-bytes-used': '0' })).status).toBe(204);
    expect((await req(node(0), 'POST', [1, 'AUTH_q'], { headers: { 'x-timestamp': ts(), 'x-account-meta-tier': 'gold' } })).status).toBe(204);
    const r = await fetch(`http://127.0.0.1:${node(0).port}/_db_replicate`, { method: 'POST' });
    expect(r.status).toBe(200);
    const h = await req(node(1), 'GET', [1, 'AUTH_q'], { query: { format: 'json' } });
    expect(h.json<{ name: string }[]>().map((x) => x.name)).toEqual(['b1']);
    expect([h.headers.get('x-account-container-count'), h.headers.get('x-account-object-count'), h.headers.get('x-account-bytes-used'), h.headers.get('x-account-meta-tier')]).toEqual(['1', '2', '20', 'gold']);
  });
});
