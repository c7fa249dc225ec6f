/**
 * The container server's backend API against a real process: status codes, rows, counts,
 * timestamps, metadata, bad input (with nothing written), restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbCluster, req, ts, type DbNode } from './db-cluster.js';

let cluster: DbCluster;
let node: DbNode;

beforeAll(async () => {
  cluster = await DbCluster.start({ containers: 1, accounts: 0 });
  node = cluster.containers[0] as DbNode;
});
afterAll(async () => {
  await cluster?.stop();
});

const putRow = (c: string, o: string, size: number, t = ts(), etag = 'd41d8cd98f00b204e9800998ecf8427e') =>
  req(node, 'PUT', [0, 'AUTH_a', c, o], { headers: { 'x-timestamp': t, 'x-size': String(size), 'x-content-type': 'text/plain', 'x-etag': etag } });
const deleteRow = (c: string, o: string, t = ts()) => req(node, 'DELETE', [0, 'AUTH_a', c, o], { headers: { 'x-timestamp': t } });
const head = (c: string) => req(node, 'HEAD', [0, 'AUTH_a', c]);
const counts = async (c: string) => {
  const h = await head(c);
  return [Number(h.headers.get('x-container-object-count')), Number(h.headers.get('x-container-bytes-used'))];
};

describe('container server', () => {
  it('creates (201), accepts again (202), reports and deletes a container', async () => {
    const created = ts();
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'c1'], { headers: { 'x-timestamp': created, 'x-container-meta-color': 'blue', 'x-container-sysmeta-s3-owner': 'alice' } })).status).toBe(201);
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'c1'], { headers: { 'x-timestamp': ts() } })).status).toBe(202);
    const h = await head('c1');
    expect(h.status).toBe(204);
    expect(h.headers.get('x-container-object-count')).toBe('0');
    expect(h.headers.get('x-container-bytes-used')).toBe('0');
    expect(h.headers.get('x-container-meta-color')).toBe('blue');
    expect(h.headers.get('x-container-sysmeta-s3-owner')).toBe('alice');
    expect(h.headers.get('x-backend-storage-policy-index')).toBe('0');
    expect(h.headers.get('x-timestamp')).toBe(created);
    // POST replaces one key, keeps the others; an empty value removes it
    expect((await req(node, 'POST', [0, 'AUTH_a', 'c1'], { headers: { 'x-timestamp': ts(), 'x-container-meta-color': '' } })).status).toBe(204);
    const h2 = await head('c1');
    expect(h2.headers.get('x-container-meta-color')).toBeNull();
    expect(h2.headers.get('x-container-sysmeta-s3-owner')).toBe('alice');
    const del = ts();
    expect((await req(node, 'DELETE', [0, 'AUTH_a', 'c1'], { headers: { 'x-timestamp': del } })).status).toBe(204);
    const gone = await head('c1');
    expect(gone.status).toBe(404);
    expect(gone.headers.get('x-backend-delete-timestamp')).toBe(del);
    expect(gone.headers.get('x-backend-put-timestamp')).not.toBeNull();
    expect((await req(node, 'DELETE', [0, 'AUTH_a', 'c1'], { headers: { 'x-timestamp': ts() } })).status).toBe(404);
    // recreated after the delete: 201 again
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'c1'], { headers: { 'x-timestamp': ts() } })).status).toBe(201);
    expect((await req(node, 'HEAD', [0, 'AUTH_a', 'never'])).status).toBe(404);
  });

  it('keeps the storage policy index and refuses a different one (409)', async () => {
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'pol'], { headers: { 'x-timestamp': ts(), 'x-backend-storage-policy-index': '1' } })).status).toBe(201);
    const r = await req(node, 'PUT', [0, 'AUTH_a', 'pol'], { headers: { 'x-timestamp': ts(), 'x-backend-storage-policy-index': '0' } });
    expect(r.status).toBe(409);
    expect(r.headers.get('x-backend-storage-policy-index')).toBe('1');
    expect((await head('pol')).headers.get('x-backend-storage-policy-index')).toBe('1');
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'pol2'], { headers: { 'x-timestamp': ts(), 'x-backend-storage-policy-index': '7' } })).status).toBe(400);
    expect((await head('pol2')).status).toBe(404);
  });

  it('counts rows and bytes through overwrites and deletes; older updates are ignored', async () => {
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'cnt'], { headers: { 'x-timestamp': ts() } })).status).toBe(201);
    const t1 = ts();
    expect((await putRow('cnt', 'a', 10, t1)).status).toBe(201);
    expect((await putRow('cnt', 'b', 20)).status).toBe(201);
    expect(await counts('cnt')).toEqual([2, 30]);
    const t2 = ts();
    expect((await putRow('cnt', 'a', 5, t2)).status).toBe(201); // overwrite
    expect(await counts('cnt')).toEqual([2, 25]);
    expect((await putRow('cnt', 'a', 999, t1)).status).toBe(201); // older: ignored
    expect((await putRow('cnt', 'a', 999, t2)).status).toBe(201); // same timestamp: ignored
    expect(await counts('cnt')).toEqual([2, 25]);
    const listed = (await req(node, 'GET', [0, 'AUTH_a', 'cnt'], { query: { format: 'json' } })).json<{ name: string; bytes: number }[]>();
    expect(listed.map((r) => [r.name, r.bytes])).toEqual([['a', 5], ['b', 20]]);
    const td = ts();
    expect((await deleteRow('cnt', 'b', td)).status).toBe(204);
    expect(await counts('cnt')).toEqual([1, 5]);
    expect((await putRow('cnt', 'b', 20, t1)).status).toBe(201); // older than the tombstone
    expect(await counts('cnt')).toEqual([1, 5]);
    // non-empty container: 409, still there
    expect((await req(node, 'DELETE', [0, 'AUTH_a', 'cnt'], { headers: { 'x-timestamp': ts() } })).status).toBe(409);
    expect((await head('cnt')).status).toBe(204);
    expect((await deleteRow('cnt', 'a')).status).toBe(204);
    expect(await counts('cnt')).toEqual([0, 0]);
    expect((await req(node, 'DELETE', [0, 'AUTH_a', 'cnt'], { headers: { 'x-timestamp': ts() } })).status).toBe(204);
    // a row PUT into the deleted container's database revives it (Swift)
    expect((await putRow('cnt', 'z', 1)).status).toBe(201);
    expect(await counts('cnt')).toEqual([1, 1]);
  });

  it('refuses bad input with Swift status codes and writes nothing', async () => {
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'bad'], {})).status).toBe(400); // no timestamp
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'bad'], { headers: { 'x-timestamp': 'yesterday' } })).status).toBe(400);
    expect((await head('bad')).status).toBe(404);
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'ok'], { headers: { 'x-timestamp': ts() } })).status).toBe(201);
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'ok', 'o'], { headers: { 'x-timestamp': ts(), 'x-content-type': 'a/b', 'x-etag': 'e' } })).status).toBe(400); // no size
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'ok', 'o'], { headers: { 'x-timestamp': ts(), 'x-size': '-1', 'x-content-type': 'a/b', 'x-etag': 'e' } })).status).toBe(400);
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'ok', 'o'], { headers: { 'x-size': '1', 'x-content-type': 'a/b', 'x-etag': 'e' } })).status).toBe(400); // no timestamp
    expect(await counts('ok')).toEqual([0, 0]);
    expect((await putRow('missing', 'o', 1)).status).toBe(404); // container never created
    expect((await req(node, 'HEAD', [0, 'AUTH_a', 'ok'], { device: 'nodev' })).status).toBe(507);
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'ok', 'o'], { device: 'nodev', headers: { 'x-timestamp': ts() } })).status).toBe(507);
    const over = await req(node, 'GET', [0, 'AUTH_a', 'ok'], { query: { limit: '10001' } });
    expect(over.status).toBe(412);
    expect(over.text).toContain('Maximum limit is 10000');
    expect((await req(node, 'GET', [0, 'AUTH_a', 'ok'], { query: { delimiter: 'ab' } })).status).toBe(412);
    const nul = await fetch(`http://127.0.0.1:${node.port}/${node.device}/0/AUTH_a/ok/x%00y`, { method: 'PUT', headers: { 'x-timestamp': ts(), 'x-size': '1', 'x-content-type': 'a/b', 'x-etag': 'e' } });
    expect(nul.status).toBe(412);
    expect((await fetch(`http://127.0.0.1:${node.port}/${node.device}/0`, { method: 'HEAD' })).status).toBe(400);
    expect(await counts('ok')).toEqual([0, 0]);
  });

  it('keeps counts exact under concurrent writes, overwrites and deletes of one container', async () => {
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'busy'], { headers: { 'x-timestamp': ts() } })).status).toBe(201);
    const stamps = Array.from({ length: 300 }, () => ts());
    // 100 names, each written three times concurrently with different sizes; the newest (size 3) wins
    const results = await Promise.all(stamps.map((t, i) => putRow('busy', `n${i % 100}`, 1 + Math.floor(i / 100), t)));
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(await counts('busy')).toEqual([100, 300]);
    const dels = await Promise.all(Array.from({ length: 50 }, (_, i) => deleteRow('busy', `n${i * 2}`)));
    expect(dels.every((r) => r.status === 204)).toBe(true);
    expect(await counts('busy')).toEqual([50, 150]);
    const rows = (await req(node, 'GET', [0, 'AUTH_a', 'busy'], { query: { format: 'json' } })).json<{ bytes: number }[]>();
    expect(rows).toHaveLength(50);
    expect(rows.every((r) => r.bytes === 3)).toBe(true);
  });

  it('keeps everything across a restart', async () => {
    expect((await req(node, 'PUT', [0, 'AUTH_a', 'keep'], { headers: { 'x-timestamp': ts(), 'x-container-meta-k': 'v' } })).status).toBe(201);
    for (let i = 0; i < 20; i++) expect((await putRow('keep', `o${i}`, i)).status).toBe(201);
    await deleteRow('keep', 'o0');
    const exited = node.server?.exited;
    await cluster.stopNode(node);
    expect(await exited).toBe(0); // SIGTERM: drained, LevelDB closed, exit 0
    await cluster.startNode(node);
    const h = await head('keep');
    expect(h.headers.get('x-container-meta-k')).toBe('v');
    expect(await counts('keep')).toEqual([19, 190]);
    const names = (await req(node, 'GET', [0, 'AUTH_a', 'keep'])).text.split('\n').filter(Boolean);
    expect(names).toHaveLength(19);
    expect(names[0]).toBe('o1');
  });
});
