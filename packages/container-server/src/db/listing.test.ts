import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@swiftlet/common';
import { DeviceDb } from './device-db.js';
import { ownerKey } from './keys.js';
import { listRows, type ListingParams } from './listing.js';
import { RowDb, newOwnerInfo } from './row-db.js';
import { objectRowModel, type ObjectRow } from './row-model.js';

let dir: string;
let db: RowDb<ObjectRow>;
const owner = ownerKey({ part: '0', account: 'a', container: 'c' });
const name = (d: number, o: number): string => `d${String(d).padStart(3, '0')}/o${String(o).padStart(3, '0')}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swiftlet-listing-'));
  db = new RowDb(await DeviceDb.open(dir, 'd1', 'containers.db', silentLogger()), objectRowModel);
  await db.transact(owner, async (tx) => {
    tx.info = newOwnerInfo('1.00000', 0);
    for (let d = 0; d < 50; d++) for (let o = 0; o < 200; o++) await tx.mergeRow(name(d, o), { ts: '2.00000', deleted: false, size: 1, contentType: 'a', etag: 'e', seq: 0 });
  });
});
afterAll(async () => {
  await db.dev.close();
  await rm(dir, { recursive: true, force: true });
});

/** Lists while counting the entries LevelDB hands out. */
async function countedList(p: Partial<ListingParams>): Promise<{ names: string[]; read: number }> {
  let read = 0;
  const orig = db.dev.db.iterator.bind(db.dev.db);
  const spy = ((opts: Parameters<typeof orig>[0]) => {
    const it = orig(opts);
    const next = it.next.bind(it);
    const all = it.all.bind(it);
    it.next = (async () => {
      const e = await next();
      if (e !== undefined) read++;
      return e;
    }) as typeof it.next;
    it.all = (async () => {
      const es = await all();
      read += es.length;
      return es;
    }) as typeof it.all;
    return it;
  }) as typeof db.dev.db.iterator;
  db.dev.db.iterator = spy;
  try {
    const snap = db.dev.snapshot();
    const rows = await listRows(db.dev, objectRowModel, owner, { prefix: '', delimiter: '', marker: '', endMarker: '', limit: 10_000, reverse: false, ...p }, snap);
    await snap.close();
    return { names: rows.map((r) => ('name' in r ? r.name : r.subdir)), read };
  } finally {
    db.dev.db.iterator = orig;
  }
}

describe('delimiter listings seek past each common prefix', () => {
  it('reads one row per common prefix, forward and reverse, not the 10,000 rows under them', async () => {
    const fwd = await countedList({ delimiter: '/' });
    expect(fwd.names).toHaveLength(50);
    expect(fwd.names[0]).toBe('d000/');
    expect(fwd.read).toBe(50);
    const rev = await countedList({ delimiter: '/', reverse: true });
    expect(rev.names).toEqual([...fwd.names].reverse());
    expect(rev.read).toBe(50);
    const page = await countedList({ delimiter: '/', marker: 'd010/', limit: 5 });
    expect(page.names).toEqual(['d011/', 'd012/', 'd013/', 'd014/', 'd015/']);
    expect(page.read).toBe(5);
    // the marker equal to the prefix is no common prefix of the listing: rows under it follow
    const under = await countedList({ delimiter: '/', prefix: 'd010/', marker: 'd010/', limit: 2 });
    expect(under.names).toEqual([name(10, 0), name(10, 1)]);
  });
  it('a plain page reads only its rows', async () => {
    const p = await countedList({ marker: name(25, 0), limit: 1000 });
    expect(p.names[0]).toBe(name(25, 1));
    expect(p.read).toBe(1000);
  });
});

describe('reclaim', () => {
  it('removes tombstones older than the cutoff, keeps newer ones, and the hash follows', async () => {
    await db.transact(owner, async (tx) => {
      await tx.mergeRow(name(0, 0), { ts: '3.00000', deleted: true, size: 0, contentType: '', etag: '', seq: 0 });
      await tx.mergeRow(name(0, 1), { ts: '9.00000', deleted: true, size: 0, contentType: '', etag: '', seq: 0 });
    });
    const before = await db.readInfo(owner);
    const n = await db.reclaimRows(owner, (row) => Number(row.ts) < 5);
    expect(n).toBe(1);
    const after = await db.readInfo(owner);
    expect(after?.rows).toBe(before?.rows);
    expect(after?.hash).not.toBe(before?.hash);
    const names = (await db.rowsSince(owner, 0, 100_000)).map((r) => r.name);
    expect(names).not.toContain(name(0, 0));
    expect(names).toContain(name(0, 1));
  });
});
