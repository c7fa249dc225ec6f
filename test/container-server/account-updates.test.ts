/**
 * The account server's API and the container -> account updates between real processes:
 * container creations, deletions, object counts and bytes reach every account replica; updates
 * owed to an account server that is down are kept durably (across a container server restart)
 * and delivered by the updater.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binPath, waitFor } from '@swiftlet/cluster';
import { Ring } from '@swiftlet/ring';
import { DbCluster, req, ts, type DbNode } from './db-cluster.js';

const run = promisify(execFile);
let cluster: DbCluster;
let cnode: DbNode;
let ring: Ring;

type AccountRow = { name?: string; count?: number; bytes?: number; last_modified?: string; subdir?: string };

beforeAll(async () => {
  cluster = await DbCluster.start({ containers: 1, accounts: 2 });
  cnode = cluster.containers[0] as DbNode;
  ring = Ring.forKind(cluster.swiftDir, 'account');
});
afterAll(async () => {
  await cluster?.stop();
});

function accountNode(i: number): DbNode {
  return cluster.accounts[i] as DbNode;
}
/** The account as account replica i holds it. */
async function account(i: number, acct: string): Promise<{ status: number; headers: Headers; rows: AccountRow[] }> {
  const part = ring.getPart(acct);
  const node = accountNode(i);
  const dev = ring.getPartNodes(part).find((n) => n.port === node.port)?.device as string;
  const r = await req(node, 'GET', [part, acct], { query: { format: 'json' }, device: dev });
  return { status: r.status, headers: r.headers, rows: r.status === 200 ? r.json<AccountRow[]>() : [] };
}
const putContainer = (acct: string, c: string) => req(cnode, 'PUT', [1, acct, c], { headers: { 'x-timestamp': ts() } });
const putRow = (acct: string, c: string, o: string, size: number) =>
  req(cnode, 'PUT', [1, acct, c, o], { headers: { 'x-timestamp': ts(), 'x-size': String(size), 'x-content-type': 'a/b', 'x-etag': 'e' } });

describe('account server', () => {
  it('creates, reports, lists and deletes accounts; refuses bad container rows', async () => {
    const a = accountNode(0);
    expect((await req(a, 'PUT', [3, 'AUTH_x'], { headers: { 'x-timestamp': ts(), 'x-account-meta-quota': '5' } })).status).toBe(201);
    expect((await req(a, 'PUT', [3, 'AUTH_x'], { headers: { 'x-timestamp': ts() } })).status).toBe(202);
    const row = (c: string, h: Record<string, string>) => req(a, 'PUT', [3, 'AUTH_x', c], { headers: h });
    expect((await row('c1', { 'x-put-timestamp': ts(), 'x-delete-timestamp': '0', 'x-object-count': '3', 'x-bytes-used': '30' })).status).toBe(201);
    expect((await row('c2', { 'x-put-timestamp': ts(), 'x-delete-timestamp': '0', 'x-object-count': '1', 'x-bytes-used': '5', 'x-backend-storage-policy-index': '1' })).status).toBe(201);
    expect((await row('c3', { 'x-put-timestamp': 'soon', 'x-object-count': '1' })).status).toBe(400);
    expect((await row('c3', { 'x-put-timestamp': ts(), 'x-object-count': 'many' })).status).toBe(400);
    expect((await req(a, 'PUT', [3, 'AUTH_nobody', 'c'], { headers: { 'x-put-timestamp': ts() } })).status).toBe(404);
    const h = await req(a, 'HEAD', [3, 'AUTH_x']);
    expect(h.status).toBe(204);
    expect([h.headers.get('x-account-container-count'), h.headers.get('x-account-object-count'), h.headers.get('x-account-bytes-used')]).toEqual(['2', '4', '35']);
    expect(h.headers.get('x-account-meta-quota')).toBe('5');
    expect(h.headers.get('x-account-storage-policy-silver-object-count')).toBe('1');
    const rows = (await req(a, 'GET', [3, 'AUTH_x'], { query: { format: 'json' } })).json<AccountRow[]>();
    expect(rows.map((r) => [r.name, r.count, r.bytes])).toEqual([['c1', 3, 30], ['c2', 1, 5]]);
    expect((await req(a, 'GET', [3, 'AUTH_x'], { query: { prefix: 'c', limit: '1' } })).text).toBe('c1\n');
    // a container row deleted (delete timestamp newer than put, no objects) leaves the listing
    expect((await row('c1', { 'x-put-timestamp': '0', 'x-delete-timestamp': ts(), 'x-object-count': '0', 'x-bytes-used': '0' })).status).toBe(204);
    const h2 = await req(a, 'HEAD', [3, 'AUTH_x']);
    expect([h2.headers.get('x-account-container-count'), h2.headers.get('x-account-bytes-used')]).toEqual(['1', '5']);
    expect((await req(a, 'DELETE', [3, 'AUTH_x'], {})).status).toBe(400);
    expect((await req(a, 'HEAD', [3, 'AUTH_none'])).status).toBe(404);
    expect((await req(a, 'HEAD', [3, 'AUTH_x'], { device: 'nodev' })).status).toBe(507);
    expect((await req(a, 'GET', [3, 'AUTH_x'], { query: { limit: '20000' } })).status).toBe(412);
  });

  it('container creations, object counts, bytes and deletions reach every account replica', async () => {
    expect((await putContainer('AUTH_u', 'photos')).status).toBe(201);
    expect((await putContainer('AUTH_u', 'docs')).status).toBe(201);
    // the container PUT waited for the account update, the account was created on demand
    for (const i of [0, 1]) expect((await account(i, 'AUTH_u')).rows.map((r) => r.name)).toEqual(['docs', 'photos']);
    for (let k = 0; k < 5; k++) expect((await putRow('AUTH_u', 'photos', `p${k}`, 100)).status).toBe(201);
    expect((await req(cnode, 'DELETE', [1, 'AUTH_u', 'photos', 'p0'], { headers: { 'x-timestamp': ts() } })).status).toBe(204);
    for (const i of [0, 1]) {
      await waitFor(async () => (await account(i, 'AUTH_u')).headers.get('x-account-bytes-used') === '400', { what: `account replica ${i} bytes` });
      const acc = await account(i, 'AUTH_u');
      expect(acc.headers.get('x-account-object-count')).toBe('4');
      expect(acc.rows.find((r) => r.name === 'photos')).toMatchObject({ count: 4, bytes: 400 });
    }
    expect((await req(cnode, 'DELETE', [1, 'AUTH_u', 'docs'], { headers: { 'x-timestamp': ts() } })).status).toBe(204);
    for (const i of [0, 1]) {
      const acc = await account(i, 'AUTH_u');
      expect(acc.rows.map((r) => r.name)).toEqual(['photos']);
      expect(acc.headers.get('x-account-container-count')).toBe('1');
    }
  });

  it('keeps updates owed to a down account server, across a container server restart, until delivered', async () => {
    await cluster.stopNode(accountNode(1));
    expect((await putContainer('AUTH_u', 'later')).status).toBe(201); // the container PUT still succeeds
    expect((await putRow('AUTH_u', 'later', 'x', 7)).status).toBe(201);
    await waitFor(async () => (await account(0, 'AUTH_u')).rows.find((r) => r.name === 'later')?.bytes === 7, { what: 'replica 0 updated' });
    // the updater cannot deliver everything: exit 1, records kept
    const failed = await run(process.execPath, [binPath('container-updater'), cnode.conf]).catch((e: { code: number; stdout: string }) => e);
    expect((failed as { code: number }).code).toBe(1);
    await cluster.stopNode(cnode);
    await cluster.startNode(cnode);
    await cluster.startNode(accountNode(1));
    const ok = await run(process.execPath, [binPath('container-updater'), cnode.conf]);
    const stats = JSON.parse(ok.stdout) as { attempted: number; failed: number };
    expect(stats.failed).toBe(0);
    const acc = await account(1, 'AUTH_u');
    expect(acc.rows.find((r) => r.name === 'later')).toMatchObject({ count: 1, bytes: 7 });
    expect(acc.headers.get('x-account-container-count')).toBe('2');
    // nothing left to deliver
    const again = JSON.parse((await run(process.execPath, [binPath('container-updater'), cnode.conf])).stdout) as { attempted: number };
    expect(again.attempted).toBe(0);
  });
});
