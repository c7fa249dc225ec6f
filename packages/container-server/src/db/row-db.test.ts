import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@swiftlet/common';
import { DeviceDb } from './device-db.js';
import { compareUtf8, ownerKey, parseOwnerKey, prefixEnd } from './keys.js';
import { listRows } from './listing.js';
import { RowDb, newOwnerInfo } from './row-db.js';
import { containerRowModel, objectRowModel, type ObjectRow } from './row-model.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function openDb(): Promise<RowDb<ObjectRow>> {
  const dir = await mkdtemp(join(tmpdir(), 'swiftlet-rowdb-'));
  dirs.push(dir);
  return new RowDb(await DeviceDb.open(dir, 'd1', 'containers.db', silentLogger()), objectRowModel);
}
const row = (ts: string, size: number, deleted = false): ObjectRow => ({ ts, size, deleted, contentType: 'a/b', etag: 'e', seq: 0 });

describe('keys', () => {
  it('prefixEnd bounds every string with the prefix, in UTF-8 byte order', () => {
    for (const p of ['a', 'ab/', 'é', '\uffff', '😀', 'a\u{10ffff}']) {
      const end = prefixEnd(p);
      for (const s of [p, `${p}x`, `${p}\u{10ffff}`, `${p}😀`]) expect(compareUtf8(s, end)).toBeLessThan(0);
      expect(compareUtf8(p, end)).toBeLessThan(0);
    }
    expect(prefixEnd('ab')).toBe('ac');
    expect(compareUtf8('\uffff', '😀')).toBeLessThan(0); // UTF-16 order would say the opposite
  });
  it('owner keys round-trip', () => {
    expect(parseOwnerKey(ownerKey({ part: '3', account: 'a', container: 'c/d' }))).toEqual({ part: '3', account: 'a', container: 'c/d' });
    expect(parseOwnerKey(ownerKey({ part: '3', account: 'a' }))).toEqual({ part: '3', account: 'a' });
  });
});

describe('row models', () => {
  it('object rows: newer wins, equal or older is ignored', () => {
    expect(objectRowModel.merge(row('2.00000', 1), row('1.00000', 2))).toBeUndefined();
    expect(objectRowModel.merge(row('2.00000', 1), row('2.00000', 2))).toBeUndefined();
    expect(objectRowModel.merge(row('2.00000', 1), row('3.00000', 2, true))?.deleted).toBe(true);
  });
  it('container rows: timestamps keep their maximum, counts come from the newer report', () => {
    const a = { putTs: '5.00000', deleteTs: '0000000000.00000', objects: 3, bytes: 30, policyIndex: 0, statsTs: '6.00000', deleted: false, seq: 1 };
    const merged = containerRowModel.merge(a, { ...a, putTs: '4.00000', objects: 1, bytes: 1, statsTs: '5.00000' });
    expect(merged).toBeUndefined();
    const del = containerRowModel.merge(a, { ...a, putTs: '0000000000.00000', deleteTs: '7.00000', objects: 0, bytes: 0, statsTs: '7.00000' });
    expect(del).toMatchObject({ putTs: '5.00000', deleteTs: '7.00000', objects: 0, deleted: true });
  });
});

describe('RowDb', () => {
  it('keeps counts exact under concurrent grouped writes, and lists through a snapshot', async () => {
    const db = await openDb();
    const owner = ownerKey({ part: '0', account: 'a', container: 'c' });
    await db.transact(owner, (tx) => {
      tx.info = newOwnerInfo('1.00000', 0);
      tx.touch();
    });
    const missing = () => new Error('missing');
    await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        db.queueRow(owner, `n${i % 100}`, row(`${10 + i}.00000`, i), { markAccountDirty: true, missing }),
      ),
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => db.queueRow(owner, `n${i}`, row('1000.00000', 0, true), { markAccountDirty: true, missing })));
    const info = await db.readInfo(owner);
    expect(info?.rows).toBe(90);
    const expectedBytes = Array.from({ length: 90 }, (_, k) => 300 + k + 10).reduce((a, b) => a + b, 0);
    expect(info?.bytes).toBe(expectedBytes);
    expect(info?.maxSeq).toBe(410);
    const snap = db.dev.snapshot();
    const page = await listRows(db.dev, objectRowModel, owner, { prefix: 'n9', delimiter: '', marker: '', endMarker: '', limit: 5, reverse: false }, snap);
    await snap.close();
    expect(page.map((e) => ('name' in e ? e.name : e.subdir))).toEqual(['n90', 'n91', 'n92', 'n93', 'n94']);
    // the change log holds one entry per row: replication reads it from a sync point
    expect((await db.rowsSince(owner, 0, 1000)).length).toBe(100);
    expect(await db.pendingAccountUpdates()).toEqual([[owner, info?.updateGen]]);
    await expect(db.queueRow(ownerKey({ part: '0', account: 'a', container: 'nope' }), 'x', row('1.00000', 1), { markAccountDirty: true, missing })).rejects.toThrow('missing');
    await db.dev.close();
  });
});
