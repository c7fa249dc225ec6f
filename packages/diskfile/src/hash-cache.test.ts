import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Timestamp } from '@swiftlet/common';
import { consolidate, getPartitionHashes, hashesDigest, hashSuffix, invalidateSuffix, parseHashes, parseSettledHashes, serializeHashes, settledDigest } from './hash-cache.js';
import { encodeTrailer } from './metadata-file.js';
import { withLock } from './partition-lock.js';
import { bodyOf, makeTree, type TestTree } from './test-helpers.js';

const T = (s: number): Timestamp => Timestamp.fromSeconds(s);
const NOW = 1_700_000_000;
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

let tree: TestTree;
beforeEach(async () => {
  tree = await makeTree({ now: () => NOW });
});
afterEach(async () => {
  await tree.cleanup();
});

const partDir = (t: TestTree, part: number, dev = 'sda'): string => join(t.devices, dev, 'objects', String(part));

async function put(t: TestTree, part: number, name: string, ts: number, dev = 'sda'): Promise<string> {
  const df = t.mgr.diskFile(dev, part, 0, 'a', 'c', name);
  await df.write(T(ts), {}, bodyOf(name), {});
  return df.hash;
}

/** The hashes a full rehash from disk gives, without touching the cache files. */
async function fromDisk(t: TestTree, part: number, dev = 'sda'): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const dir = partDir(t, part, dev);
  for (const s of (await readdir(dir)).filter((n) => /^[0-9a-f]{3}$/.test(n)).sort()) {
    const h = await hashSuffix(join(dir, s), NOW, 604800);
    if (h !== undefined) out[s] = h;
  }
  return out;
}

describe('suffix hash cache', () => {
  it('returns {} for a missing partition without creating it (checklist 37)', async () => {
    expect(await tree.mgr.getHashes('sda', 3, 0)).toEqual({});
    await expect(stat(partDir(tree, 3))).rejects.toThrow(/ENOENT/);
  });

  it('hashes a suffix over hash names and state files, and empties the journal (checklist 38)', async () => {
    const hash = await put(tree, 1, 'o', NOW);
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.writeMeta(T(NOW + 1), { 'X-Object-Meta-A': 'b' });
    const hashes = await tree.mgr.getHashes('sda', 1, 0);
    expect(hashes).toEqual({ [hash.slice(-3)]: md5(`${hash}:${T(NOW + 1).internal}.meta${T(NOW).internal}.data\n`) });
    await expect(stat(join(partDir(tree, 1), 'hashes.invalid'))).rejects.toThrow(/ENOENT/);
    const cache = JSON.parse(await readFile(join(partDir(tree, 1), 'hashes'), 'utf8'));
    expect(cache).toMatchObject({ version: 1, valid: true, hashes });
  });

  it('serves valid suffixes from the cache; recalculate and the every-10th-pass listing find changes made behind its back (checklist 42)', async () => {
    // partition 1: passes 0..8 do not list, pass 9 does ((1 + 9) % 10 == 0).
    const h1 = await put(tree, 1, 'o1', NOW);
    const first = await tree.mgr.getHashes('sda', 1, 0); // pass 0
    // A suffix folder appears without a journal entry (as rsync would do it).
    const hidden = 'f'.repeat(29) + 'abc';
    await mkdir(join(partDir(tree, 1), 'abc', hidden), { recursive: true });
    await writeFile(join(partDir(tree, 1), 'abc', hidden, `${T(NOW).internal}.ts`), encodeTrailer({ 'X-Timestamp': T(NOW).internal }));
    // And a file changes in a known suffix without a journal entry.
    const df1 = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o1');
    await writeFile(join(df1.hashDir, `${T(NOW + 5).internal}.ts`), encodeTrailer({ 'X-Timestamp': T(NOW + 5).internal }));
    for (let pass = 1; pass <= 8; pass++) expect(await tree.mgr.getHashes('sda', 1, 0)).toEqual(first);
    const recalculated = await tree.mgr.getHashes('sda', 1, 0, { recalculate: [h1.slice(-3)] }); // pass 9: lists
    expect(recalculated[h1.slice(-3)]).toBe(md5(`${h1}:${T(NOW + 5).internal}.ts\n`));
    expect(recalculated['abc']).toBe(md5(`${hidden}:${T(NOW).internal}.ts\n`));
    expect(recalculated).toEqual(await fromDisk(tree, 1));
  });

  it('rebuilds a missing or corrupt cache from disk (checklist 41)', async () => {
    for (let i = 0; i < 20; i++) await put(tree, 2, `o${i}`, NOW);
    const good = await tree.mgr.getHashes('sda', 2, 0);
    expect(Object.keys(good).length).toBeGreaterThan(10);
    for (const garbage of ['not json', '{"version":1,"valid":true,"hashes":{"zzz":"x"}}', '{"version":9}', '']) {
      await writeFile(join(partDir(tree, 2), 'hashes'), garbage);
      expect(await tree.mgr.getHashes('sda', 2, 0)).toEqual(good);
    }
    await writeFile(join(partDir(tree, 2), 'hashes'), '');
    await rename(join(partDir(tree, 2), 'hashes'), join(partDir(tree, 2), 'gone'));
    expect(await tree.mgr.getHashes('sda', 2, 0)).toEqual(good);
  });

  it('crash points: a consolidation that died after taking the journal, a hashes tmp file, a write published without its second entry', async () => {
    const hash = await put(tree, 4, 'o', NOW);
    await tree.mgr.getHashes('sda', 4, 0);
    const dir = partDir(tree, 4);
    // (1) A new version is published, then the consolidator died after renaming the journal away.
    await put(tree, 4, 'o', NOW + 1);
    await rename(join(dir, 'hashes.invalid'), join(dir, 'hashes.invalid.consuming'));
    // (2) A hashes write died before its rename: a stray tmp file beside it.
    await writeFile(join(dir, '.hashes.1234.abcdef.tmp'), '{"garbage"');
    const after = await tree.mgr.getHashes('sda', 4, 0);
    expect(after[hash.slice(-3)]).toBe(md5(`${hash}:${T(NOW + 1).internal}.data\n`));
    await expect(stat(join(dir, 'hashes.invalid.consuming'))).rejects.toThrow(/ENOENT/);
    // (3) A writer died between link and its second journal entry, after a consolidation had taken
    // the first: the cache says valid, the tmp name is still in <device>/tmp.
    const df = tree.mgr.diskFile('sda', 4, 0, 'a', 'c', 'o');
    const tmpDir = join(tree.devices, 'sda', 'tmp');
    const tmpName = `999999999.0011223344556677.0.4.${hash.slice(-3)}.tmp`;
    const content = encodeTrailer({ 'X-Timestamp': T(NOW + 2).internal });
    await writeFile(join(tmpDir, tmpName), content);
    await writeFile(join(df.hashDir, `${T(NOW + 2).internal}.ts`), content);
    expect((await tree.mgr.getHashes('sda', 4, 0))[hash.slice(-3)]).toBe(after[hash.slice(-3)]); // stale, as the crash left it
    expect(await tree.mgr.removeStaleTmp()).toBe(1);
    expect(await readdir(tmpDir)).toEqual([]);
    expect((await tree.mgr.getHashes('sda', 4, 0))[hash.slice(-3)]).toBe(md5(`${hash}:${T(NOW + 2).internal}.ts\n`));
  });

  it('two device trees with the same objects give the same hashes, obsolete files or not (checklist 39)', async () => {
    const other = await makeTree({ now: () => NOW });
    try {
      for (let i = 0; i < 12; i++) {
        // Only `other` sees the older versions, and a .meta that an older .data makes obsolete.
        const df = other.mgr.diskFile('sda', 0, 0, 'a', 'c', `o${i}`);
        await df.write(T(NOW - 100), {}, bodyOf('old'), {});
        await df.writeMeta(T(NOW - 90), { 'X-Object-Meta-X': '1' });
        await put(other, 0, `o${i}`, NOW - i);
        await put(tree, 0, `o${i}`, NOW - i);
      }
      // Smuggle obsolete files back in (as an rsync would) into `other`.
      const df0 = other.mgr.diskFile('sda', 0, 0, 'a', 'c', 'o0');
      await writeFile(join(df0.hashDir, `${T(NOW - 200).internal}.ts`), encodeTrailer({ 'X-Timestamp': T(NOW - 200).internal }));
      await writeFile(join(df0.hashDir, `${T(NOW - 150).internal}.meta`), encodeTrailer({ 'X-Timestamp': T(NOW - 150).internal }));
      const a = await tree.mgr.getHashes('sda', 0, 0);
      const b = await other.mgr.getHashes('sda', 0, 0, { recalculate: [df0.suffix] });
      expect(b).toEqual(a);
      expect(await readdir(df0.hashDir)).toEqual([`${T(NOW).internal}.data`]);
    } finally {
      await other.cleanup();
    }
  });

  it('consuming journal entries always changes the hashes text, so an older rehash cannot write back (checklist 40)', async () => {
    const dir = partDir(tree, 8);
    await mkdir(dir, { recursive: true });
    // Invalid (missing) cache: the consolidation still leaves a mark.
    await invalidateSuffix(dir, 'abc');
    const first = await consolidate(dir, NOW);
    expect(first.text).not.toBeNull();
    expect(JSON.parse(first.text as string)).toMatchObject({ valid: false, generation: 1 });
    // A valid cache where the suffix is already null: the text changes all the same.
    await writeFile(join(dir, 'hashes'), JSON.stringify({ version: 1, generation: 5, valid: true, updated: 0, hashes: { abc: null } }));
    const before = await readFile(join(dir, 'hashes'), 'utf8');
    await invalidateSuffix(dir, 'abc');
    const second = await consolidate(dir, NOW);
    expect(second.text).not.toBe(before);
    expect(JSON.parse(second.text as string)).toMatchObject({ valid: true, generation: 6, hashes: { abc: null } });
    // Nothing journaled: nothing written.
    const third = await consolidate(dir, NOW);
    expect(third.text).toBe(second.text);
  });

  it('a change journaled during a rehash is never lost, whether or not another pass consumed it meanwhile (checklist 40)', async () => {
    const hash = await put(tree, 5, 'o', NOW - 10);
    const dir = partDir(tree, 5);
    const s = hash.slice(-3);
    const opts = { nowS: NOW, reclaimAgeS: 604800, listdir: false };
    await getPartitionHashes(dir, opts);
    const df = tree.mgr.diskFile('sda', 5, 0, 'a', 'c', 'o');
    // (a) A write lands while a pass rehashes: the pass stores its older view, the journal keeps
    // the entry, the next pass corrects it.
    await df.writeMeta(T(NOW - 5), {});
    let first = await getPartitionHashes(dir, {
      ...opts,
      afterRehash: async (attempt) => {
        if (attempt === 0) await df.writeTombstone(T(NOW - 4));
      },
    });
    expect(first.hashes[s]).toBe(md5(`${hash}:${T(NOW - 5).internal}.meta${T(NOW - 10).internal}.data
`));
    expect((await getPartitionHashes(dir, opts)).hashes[s]).toBe(md5(`${hash}:${T(NOW - 4).internal}.ts
`));
    // (b) A write lands and another pass consumes its entry before this pass writes back: this
    // pass must notice (hashes changed) and start over instead of storing its older view.
    await df.write(T(NOW - 3), {}, bodyOf('x'), {});
    let attempts = 0;
    // The two-step path (header, points 4 and 7): another pass can take the lock meanwhile.
    first = await getPartitionHashes(dir, {
      ...opts,
      lockedRehashMax: 0,
      afterRehash: async (attempt) => {
        attempts = attempt + 1;
        if (attempt === 0) {
          await df.write(T(NOW - 2), {}, bodyOf('y'), {});
          await getPartitionHashes(dir, opts);
        }
      },
    });
    expect(attempts).toBe(2);
    const expected = md5(`${hash}:${T(NOW - 2).internal}.data
`);
    expect(first.hashes[s]).toBe(expected);
    expect((await getPartitionHashes(dir, opts)).hashes[s]).toBe(expected);
    expect(JSON.parse(await readFile(join(dir, 'hashes'), 'utf8')).hashes[s]).toBe(expected);
    // (c) As (b), but the other pass has only consolidated (it is still rehashing): the suffix
    // was already null in our snapshot, and the consolidation must still change `hashes`.
    await df.write(T(NOW - 1), {}, bodyOf('z'), {});
    attempts = 0;
    first = await getPartitionHashes(dir, {
      ...opts,
      lockedRehashMax: 0,
      afterRehash: async (attempt) => {
        attempts = attempt + 1;
        if (attempt === 0) {
          await df.writeTombstone(T(NOW));
          await withLock(join(dir, '.lock'), () => consolidate(dir, NOW));
        }
      },
    });
    expect(attempts).toBe(2);
    const tombstoned = md5(`${hash}:${T(NOW).internal}.ts\n`);
    expect(first.hashes[s]).toBe(tombstoned);
    expect((await getPartitionHashes(dir, opts)).hashes[s]).toBe(tombstoned);
  });

  it('a small rehash is made in one hold of the lock: one write of `hashes`, the same hashes as the two steps, a write landing meanwhile kept for the next pass', async () => {
    const opts = { nowS: NOW, reclaimAgeS: 604800, listdir: false };
    const dir = partDir(tree, 7);
    const generation = async (): Promise<number> => (JSON.parse(await readFile(join(dir, 'hashes'), 'utf8')) as { generation: number }).generation;
    const names = ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'];
    for (const n of names.slice(0, 3)) await put(tree, 7, n, NOW - 20);
    await getPartitionHashes(dir, opts);
    // Three writes, three journaled suffixes: one pass, one write of `hashes` (the two steps make
    // two: the consolidation's, then the write-back).
    for (const n of names.slice(3)) await put(tree, 7, n, NOW - 10);
    let g = await generation();
    const one = await getPartitionHashes(dir, opts);
    expect(await generation()).toBe(g + 1);
    expect(one.hashes).toEqual(await fromDisk(tree, 7));
    expect((await readdir(dir)).filter((n) => n.startsWith('hashes') || n.startsWith('.'))).toEqual(['hashes']);
    for (const n of names) await tree.mgr.diskFile('sda', 7, 0, 'a', 'c', n).writeMeta(T(NOW - 5), {});
    g = await generation();
    const two = await getPartitionHashes(dir, { ...opts, lockedRehashMax: 0 });
    expect(await generation()).toBe(g + 2);
    expect(two.hashes).toEqual(await fromDisk(tree, 7));
    // Over the bound: the two steps.
    for (const n of names) await tree.mgr.diskFile('sda', 7, 0, 'a', 'c', n).writeMeta(T(NOW - 4), {});
    g = await generation();
    expect((await getPartitionHashes(dir, { ...opts, lockedRehashMax: names.length - 1 })).hashes).toEqual(await fromDisk(tree, 7));
    expect(await generation()).toBe(g + 2);
    // A write while the lock is held (writers never take it): journaled anew, hashed next pass.
    const df = tree.mgr.diskFile('sda', 7, 0, 'a', 'c', 'o1');
    await df.writeMeta(T(NOW - 3), {});
    const stale = await getPartitionHashes(dir, {
      ...opts,
      afterRehash: async () => {
        await df.writeTombstone(T(NOW - 2));
      },
    });
    expect(stale.hashes[df.suffix]).toBe(md5(`${df.hash}:${T(NOW - 3).internal}.meta${T(NOW - 20).internal}.data\n`));
    expect((await getPartitionHashes(dir, opts)).hashes[df.suffix]).toBe(md5(`${df.hash}:${T(NOW - 2).internal}.ts\n`));
    expect((await getPartitionHashes(dir, opts)).hashes).toEqual(await fromDisk(tree, 7));
  });

  it('a partition folder without a cache gets one, even with nothing in it', async () => {
    const dir = partDir(tree, 9);
    await mkdir(dir, { recursive: true });
    expect((await getPartitionHashes(dir, { nowS: NOW, reclaimAgeS: 604800, listdir: false })).hashes).toEqual({});
    expect(JSON.parse(await readFile(join(dir, 'hashes'), 'utf8'))).toMatchObject({ valid: true, hashes: {} });
  });

  it('a one-hold rehash that fails leaves the journal it took for the next pass', async () => {
    const opts = { nowS: NOW, reclaimAgeS: 604800, listdir: false };
    const dir = partDir(tree, 8);
    await put(tree, 8, 'a', NOW - 20);
    await getPartitionHashes(dir, opts);
    const df = tree.mgr.diskFile('sda', 8, 0, 'a', 'c', 'a');
    await df.writeTombstone(T(NOW - 10));
    await expect(
      getPartitionHashes(dir, {
        ...opts,
        afterRehash: () => Promise.reject(new Error('injected')),
      }),
    ).rejects.toThrow('injected');
    // The journal was taken (renamed to the consuming file) and not written back.
    expect((await readdir(dir)).sort()).toContain('hashes.invalid.consuming');
    expect((await getPartitionHashes(dir, opts)).hashes[df.suffix]).toBe(md5(`${df.hash}:${T(NOW - 10).internal}.ts\n`));
    expect(await readdir(dir)).not.toContain('hashes.invalid.consuming');
  });

  it('an emptied suffix disappears from disk and from the map', async () => {
    const df = tree.mgr.diskFile('sda', 6, 0, 'a', 'c', 'o');
    await df.writeTombstone(T(NOW - 10));
    const other = await put(tree, 6, 'keep', NOW);
    expect(Object.keys(await tree.mgr.getHashes('sda', 6, 0)).sort()).toEqual([df.suffix, other.slice(-3)].sort());
    // Time passes beyond reclaim_age.
    const later = await makeTree({ devices: tree.devices, now: () => NOW + 604800 });
    try {
      const hashes = await later.mgr.getHashes('sda', 6, 0, { recalculate: [df.suffix] });
      expect(Object.keys(hashes)).toEqual([other.slice(-3)]);
      await expect(stat(join(partDir(tree, 6), df.suffix))).rejects.toThrow(/ENOENT/);
    } finally {
      await later.cleanup().catch(() => undefined);
    }
  });
});

describe('settled partitions are read without the lock', () => {
  it('answers from `hashes` alone while nothing is journaled, and sees a change journaled after that read', async () => {
    const first = await put(tree, 5, 'a', NOW);
    const settled = await getPartitionHashes(partDir(tree, 5), { nowS: NOW, reclaimAgeS: 604800, listdir: false });
    expect(settled.hashes).toEqual(await fromDisk(tree, 5));
    // A lock held by someone else does not stop a settled read (it takes no lock)...
    const again = await withLock(join(partDir(tree, 5), '.lock'), () =>
      getPartitionHashes(partDir(tree, 5), { nowS: NOW, reclaimAgeS: 604800, listdir: false }),
    );
    expect(again).toEqual({ hashes: settled.hashes, hashed: 0 });
    // ...while a journaled change sends the next read through consolidation and a rehash.
    const second = await put(tree, 5, 'b', NOW + 1);
    const after = await getPartitionHashes(partDir(tree, 5), { nowS: NOW, reclaimAgeS: 604800, listdir: false });
    expect(after.hashed).toBeGreaterThan(0);
    expect(after.hashes).toEqual(await fromDisk(tree, 5));
    expect(Object.keys(after.hashes)).toEqual(expect.arrayContaining([first.slice(-3), second.slice(-3)]));
  });
});

describe('parseSettledHashes', () => {
  const text = (hashes: unknown, extra: Record<string, unknown> = {}): string => JSON.stringify({ version: 1, valid: true, generation: 3, hashes, ...extra });

  it('gives the same hashes as parseHashes for a settled cache', () => {
    const hashes = { abc: md5('1'), '0f0': md5('2'), fff: md5('3') };
    const settled = parseSettledHashes(text(hashes));
    expect(settled).toEqual(hashes);
    expect(Object.fromEntries(parseHashes(text(hashes)).hashes)).toEqual(settled);
    expect(parseSettledHashes(text({}))).toEqual({});
  });

  it('refuses a cache with a suffix to rehash, a bad entry, another version, or not valid', () => {
    expect(parseSettledHashes(text({ abc: md5('1'), def: null }))).toBeUndefined();
    expect(parseSettledHashes(text({ abcd: md5('1') }))).toBeUndefined();
    expect(parseSettledHashes(text({ ABC: md5('1') }))).toBeUndefined();
    expect(parseSettledHashes(text({ abc: 'not-an-md5' }))).toBeUndefined();
    expect(parseSettledHashes(text({ abc: 7 }))).toBeUndefined();
    expect(parseSettledHashes(text([md5('1')]))).toBeUndefined();
    expect(parseSettledHashes(text({ abc: md5('1') }, { version: 2 }))).toBeUndefined();
    expect(parseSettledHashes(text({ abc: md5('1') }, { valid: false }))).toBeUndefined();
    expect(parseSettledHashes('{"version":1,')).toBeUndefined();
    expect(parseSettledHashes('null')).toBeUndefined();
  });
});

describe('partition digests', () => {
  it('a settled cache carries the digest of its hashes, read without parsing them; nodes with the same objects agree', async () => {
    await put(tree, 5, 'a', NOW);
    await put(tree, 5, 'b', NOW + 1);
    const hashes = await tree.mgr.getHashes('sda', 5, 0);
    expect(Object.keys(hashes).length).toBeGreaterThan(0);
    const want = md5(Object.keys(hashes).sort().map((s) => `${s}:${hashes[s]}\n`).join(''));
    expect(hashesDigest(hashes)).toBe(want);
    const text = await readFile(join(partDir(tree, 5), 'hashes'), 'utf8');
    expect(text.startsWith(`{"version":1,"generation":`)).toBe(true);
    expect(JSON.parse(text)).toMatchObject({ valid: true, digest: want });
    expect(settledDigest(partDir(tree, 5))).toBe(want);
    expect(await tree.mgr.getHashesDigest('sda', 5, 0)).toBe(want);
    // A cache written before digests existed is parsed and digested.
    const { digest: _dropped, ...older } = JSON.parse(text) as Record<string, unknown>;
    await writeFile(join(partDir(tree, 5), 'hashes'), JSON.stringify(older));
    expect(settledDigest(partDir(tree, 5))).toBe(want);
    // A journaled change: not settled, and the manager's digest follows the new hashes.
    await put(tree, 5, 'c', NOW + 2);
    expect(settledDigest(partDir(tree, 5))).toBeUndefined();
    const after = await tree.mgr.getHashesDigest('sda', 5, 0);
    expect(after).toBe(hashesDigest(await fromDisk(tree, 5)));
    expect(after).not.toBe(want);
    // Another node holding the same objects has the same digest.
    const twin = await makeTree();
    try {
      for (const [name, at] of [['a', NOW], ['b', NOW + 1], ['c', NOW + 2]] as const) await put(twin, 5, name, at);
      expect(await twin.mgr.getHashesDigest('sda', 5, 0)).toBe(after);
    } finally {
      await twin.cleanup();
    }
    // An absent partition: the digest of no hashes, and nothing created.
    expect(await tree.mgr.getHashesDigest('sda', 77, 0)).toBe(hashesDigest({}));
    await expect(stat(partDir(tree, 77))).rejects.toThrow(/ENOENT/);
  });

  it('a cache with a suffix to rehash carries no digest', () => {
    const text = serializeHashes({ valid: true, generation: 2, hashes: new Map([['abc', md5('1')], ['def', null]]) }, NOW);
    expect(JSON.parse(text)).not.toHaveProperty('digest');
    expect(parseHashes(text).hashes.get('abc')).toBe(md5('1'));
  });
});
