/**
 * Listing semantics against a real container server: prefix, delimiter (common prefixes),
 * marker paging over several pages, reverse, end_marker, formats, unicode names and names with
 * `/` and `%`; the counts in the headers match the rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbCluster, req, ts, type DbNode } from './db-cluster.js';

let cluster: DbCluster;
let node: DbNode;

type Row = { name?: string; subdir?: string; hash?: string; bytes?: number; content_type?: string; last_modified?: string };

const NAMES = [
  'a', 'a/b', 'a/b/c', 'a/c', 'a%2Fz', 'a%d', 'b', 'b/', 'b/x', 'c.txt', 'dir/1', 'dir/2', 'dir/sub/3', 'dir0',
  'é', 'ñ/x', '日本/語', '😀', '\uffff', 'z%',
];
const sorted = [...NAMES].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

async function list(query: Record<string, string>): Promise<Row[]> {
  const r = await req(node, 'GET', [0, 'AUTH_l', 'c'], { query: { format: 'json', ...query } });
  expect(r.status).toBe(200);
  return r.json<Row[]>();
}
const names = (rows: Row[]) => rows.map((r) => r.name ?? `[${r.subdir}]`);

beforeAll(async () => {
  cluster = await DbCluster.start({ containers: 1, accounts: 0 });
  node = cluster.containers[0] as DbNode;
  expect((await req(node, 'PUT', [0, 'AUTH_l', 'c'], { headers: { 'x-timestamp': ts() } })).status).toBe(201);
  await Promise.all(
    NAMES.map(async (n, i) => {
      const r = await req(node, 'PUT', [0, 'AUTH_l', 'c', n], {
        headers: { 'x-timestamp': '1700000000.12345', 'x-size': String(i), 'x-content-type': 'text/x; charset=utf-8', 'x-etag': `etag${i}` },
      });
      expect(r.status).toBe(201);
    }),
  );
});
afterAll(async () => {
  await cluster?.stop();
});

describe('container listings', () => {
  it('lists every row in UTF-8 byte order with Swift JSON fields and consistent headers', async () => {
    const r = await req(node, 'GET', [0, 'AUTH_l', 'c'], { query: { format: 'json' } });
    expect(r.headers.get('content-type')).toContain('application/json');
    expect(r.headers.get('x-container-object-count')).toBe(String(NAMES.length));
    expect(r.headers.get('x-container-bytes-used')).toBe(String(NAMES.reduce((s, _n, i) => s + i, 0)));
    const rows = r.json<Row[]>();
    expect(names(rows)).toEqual(sorted);
    expect(rows.find((x) => x.name === 'a%2Fz')).toEqual({
      name: 'a%2Fz', hash: `etag${NAMES.indexOf('a%2Fz')}`, bytes: NAMES.indexOf('a%2Fz'), content_type: 'text/x; charset=utf-8', last_modified: '2023-11-14T22:13:20.123450',
    });
  });

  it('plain text by default, 204 when empty; Accept selects JSON', async () => {
    const plain = await req(node, 'GET', [0, 'AUTH_l', 'c'], { query: { prefix: 'dir/' } });
    expect(plain.headers.get('content-type')).toContain('text/plain');
    expect(plain.text).toBe('dir/1\ndir/2\ndir/sub/3\n');
    expect((await req(node, 'GET', [0, 'AUTH_l', 'c'], { query: { prefix: 'nothing' } })).status).toBe(204);
    const empty = await req(node, 'GET', [0, 'AUTH_l', 'c'], { query: { prefix: 'nothing', format: 'json' } });
    expect([empty.status, empty.text]).toEqual([200, '[]']);
    const xml = await req(node, 'GET', [0, 'AUTH_l', 'c'], { query: { format: 'xml', prefix: 'a', delimiter: '/' } });
    expect(xml.headers.get('content-type')).toContain('application/xml');
    expect(xml.text).toContain('<container name="c"><object><name>a</name><hash>etag0</hash><bytes>0</bytes>');
    expect(xml.text).toContain('<subdir name="a/"><name>a/</name></subdir>');
    const viaAccept = await fetch(`http://127.0.0.1:${node.port}/${node.device}/0/AUTH_l/c?limit=1`, { headers: { accept: 'application/json' } });
    expect(await viaAccept.json()).toHaveLength(1);
  });

  it('prefix, delimiter and common prefixes', async () => {
    expect(names(await list({ delimiter: '/' }))).toEqual(
      sorted.filter((n) => !n.includes('/')).concat(['a/', 'b/', 'dir/', 'ñ/', '日本/']).sort((x, y) => Buffer.compare(Buffer.from(x.replace(/\/$/, '/')), Buffer.from(y))).map((n) => (n.endsWith('/') ? `[${n}]` : n)),
    );
    expect(names(await list({ prefix: 'a/', delimiter: '/' }))).toEqual(['a/b', '[a/b/]', 'a/c']);
    expect(names(await list({ prefix: 'dir', delimiter: '/' }))).toEqual(['[dir/]', 'dir0']);
    expect(names(await list({ prefix: 'dir/', delimiter: '/' }))).toEqual(['dir/1', 'dir/2', '[dir/sub/]']);
    expect(names(await list({ prefix: 'a%' }))).toEqual(['a%2Fz', 'a%d']);
    expect(names(await list({ prefix: '日本' }))).toEqual(['日本/語']);
    // a delimiter other than '/'
    expect(names(await list({ delimiter: '%', prefix: 'a' }))).toEqual(['a', '[a%]', 'a/b', 'a/b/c', 'a/c']);
    // the common prefix given as marker is not repeated
    expect(names(await list({ delimiter: '/', marker: 'dir/' }))).toEqual(names(await list({ delimiter: '/' })).slice(names(await list({ delimiter: '/' })).indexOf('[dir/]') + 1));
  });

  it('marker paging over several pages, end_marker, limit', async () => {
    const seen: string[] = [];
    let marker = '';
    for (let page = 0; page < 20; page++) {
      const rows = await list({ limit: '3', marker });
      if (rows.length === 0) break;
      expect(rows.length).toBeLessThanOrEqual(3);
      seen.push(...names(rows));
      marker = rows.at(-1)?.name as string;
    }
    expect(seen).toEqual(sorted);
    expect(names(await list({ marker: 'b', end_marker: 'dir/2' }))).toEqual(['b/', 'b/x', 'c.txt', 'dir/1']);
    expect(names(await list({ limit: '0' }))).toEqual([]);
    // paging with a delimiter: subdirs count toward the limit and serve as markers
    const dseen: string[] = [];
    marker = '';
    for (let page = 0; page < 20; page++) {
      const rows = await list({ limit: '2', marker, delimiter: '/' });
      if (rows.length === 0) break;
      dseen.push(...names(rows));
      marker = (rows.at(-1)?.name ?? rows.at(-1)?.subdir) as string;
    }
    expect(dseen).toEqual(names(await list({ delimiter: '/' })));
  });

  it('reverse, with marker, end_marker, prefix and delimiter', async () => {
    expect(names(await list({ reverse: 'true' }))).toEqual([...sorted].reverse());
    expect(names(await list({ reverse: 'on', marker: 'c.txt', end_marker: 'a%d' }))).toEqual(['b/x', 'b/', 'b', 'a/c', 'a/b/c', 'a/b']);
    expect(names(await list({ reverse: 'yes', prefix: 'dir/', delimiter: '/' }))).toEqual(['[dir/sub/]', 'dir/2', 'dir/1']);
    // 'b/' is both a name and a common prefix: it appears once
    expect(names(await list({ reverse: '1', prefix: 'b', delimiter: '/' }))).toEqual(['[b/]', 'b']);
    const forward = names(await list({ delimiter: '/' }));
    expect(names(await list({ delimiter: '/', reverse: 'true' }))).toEqual([...forward].reverse());
    const rseen: string[] = [];
    let marker = '';
    for (let page = 0; page < 20; page++) {
      const rows = await list({ limit: '4', marker, reverse: 'true' });
      if (rows.length === 0) break;
      rseen.push(...names(rows));
      marker = rows.at(-1)?.name as string;
    }
    expect(rseen).toEqual([...sorted].reverse());
  });

  it('deleted rows leave the listing and the counts together', async () => {
    expect((await req(node, 'DELETE', [0, 'AUTH_l', 'c', 'dir/2'], { headers: { 'x-timestamp': '1700000001.00000' } })).status).toBe(204);
    const r = await req(node, 'GET', [0, 'AUTH_l', 'c'], { query: { format: 'json' } });
    expect(r.headers.get('x-container-object-count')).toBe(String(NAMES.length - 1));
    expect(names(r.json<Row[]>())).not.toContain('dir/2');
  });
});
