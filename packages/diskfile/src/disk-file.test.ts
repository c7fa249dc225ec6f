import { createHash } from 'node:crypto';
import { readdirSync, statfsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BadRequestError,
  ClientDisconnectError,
  ConflictError,
  InsufficientStorageError,
  Timestamp,
} from '@swiftlet/common';
import { UnprocessableEntityError } from './errors.js';
import { cleanupHashDir, cleanupHashDirSync } from './ondisk.js';
import { BODY_CRC32_KEY, encodeTrailer, parseFileBuffer, readMetadataFile } from './metadata-file.js';
import { bodyOf, makeTree, readAll, type TestTree } from './test-helpers.js';

const md5 = (b: string | Buffer): string => createHash('md5').update(b).digest('hex');
const T = (s: number): Timestamp => Timestamp.fromSeconds(s);
const NOW = 1_700_000_000;

let tree: TestTree;
beforeEach(async () => {
  tree = await makeTree({ now: () => NOW });
});
afterEach(async () => {
  await tree.cleanup();
});

describe('DiskFile write/open/read', () => {
  it('lays an object out as Swift does, with metadata in the file trailer', async () => {
    const df = tree.mgr.diskFile('sda', 7, 0, 'a', 'c', 'o');
    const res = await df.write(T(NOW), { 'Content-Type': 'text/plain', 'X-Object-Meta-Color': 'blue' }, bodyOf('hello'), {
      contentLength: 5,
      expectedEtag: md5('hello'),
    });
    expect(res).toEqual({ etag: md5('hello'), size: 5 });
    const hash = tree.mgr.swiftConf.hashPath('a', 'c', 'o').hex;
    const dir = join(tree.devices, 'sda', 'objects', '7', hash.slice(-3), hash);
    expect(await readdir(dir)).toEqual([`${T(NOW).internal}.data`]);
    const raw = await readFile(join(dir, `${T(NOW).internal}.data`));
    expect(raw.subarray(raw.length - 4).toString()).toBe('SWM1');
    const parsed = parseFileBuffer(raw);
    expect(parsed.bodyLength).toBe(5);
    expect(parsed.metadata).toEqual({
      'Content-Type': 'text/plain',
      'X-Object-Meta-Color': 'blue',
      name: '/a/c/o',
      'X-Timestamp': T(NOW).internal,
      'Content-Length': '5',
      ETag: md5('hello'),
      [BODY_CRC32_KEY]: '3610a686',
    });
    // Nothing left in tmp/; the suffix journaled invalid.
    expect(await readdir(join(tree.devices, 'sda', 'tmp'))).toEqual([]);
    const journal = await readFile(join(tree.devices, 'sda', 'objects', '7', 'hashes.invalid'), 'utf8');
    expect(journal).toBe(`${hash.slice(-3)}\n${hash.slice(-3)}\n`);

    const state = await df.open();
    expect(state.kind).toBe('object');
    if (state.kind !== 'object') return;
    expect(state.contentLength).toBe(5);
    expect(state.etag).toBe(md5('hello'));
    expect(state.metadata['X-Object-Meta-Color']).toBe('blue');
    expect((await readAll(df.reader(state))).toString()).toBe('hello');
    expect((await readAll(df.reader(state, { start: 1, end: 3 }))).toString()).toBe('ell');
  });

  it('stores and verifies an empty body', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'empty');
    expect(await df.write(T(NOW), {}, bodyOf(''), { contentLength: 0 })).toEqual({ etag: md5(''), size: 0 });
    const st = await df.open();
    if (st.kind !== 'object') throw new Error('expected object');
    expect((await readAll(df.reader(st))).length).toBe(0);
  });

  it('streams a large body in big chunks and verifies it', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'big');
    const chunk = Buffer.alloc(1 << 20, 7);
    const n = 5;
    const hash = createHash('md5');
    for (let i = 0; i < n; i++) hash.update(chunk);
    const body = Readable.from((function* () {
      for (let i = 0; i < n; i++) yield chunk;
    })());
    const res = await df.write(T(NOW), {}, body, { contentLength: n << 20 });
    expect(res.etag).toBe(hash.digest('hex'));
    const state = await df.open();
    if (state.kind !== 'object') throw new Error('expected object');
    const out = await readAll(df.reader(state));
    expect(out.length).toBe(n << 20);
    const part = await readAll(df.reader(state, { start: (1 << 20) - 2, end: (1 << 20) + 1 }));
    expect([...part]).toEqual([7, 7, 7, 7]);
  });

  it('refuses a short body (499), a long body (400), a bad etag (422), and leaves nothing behind', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await expect(df.write(T(NOW), {}, bodyOf('abc'), { contentLength: 4 })).rejects.toBeInstanceOf(ClientDisconnectError);
    await expect(df.write(T(NOW), {}, bodyOf('abcde'), { contentLength: 4 })).rejects.toBeInstanceOf(BadRequestError);
    await expect(df.write(T(NOW), {}, bodyOf('abcd'), { contentLength: 4, expectedEtag: md5('x') })).rejects.toBeInstanceOf(
      UnprocessableEntityError,
    );
    const failing = new Readable({
      read() {
        this.destroy(new Error('socket hang up'));
      },
    });
    await expect(df.write(T(NOW), {}, failing, {})).rejects.toBeInstanceOf(ClientDisconnectError);
    expect(await readdir(join(tree.devices, 'sda', 'tmp'))).toEqual([]);
    expect((await df.open()).kind).toBe('absent');
  });

  it('answers 409 for writes not newer than what is stored', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.write(T(NOW), {}, bodyOf('x'), {});
    await expect(df.write(T(NOW), {}, bodyOf('y'), {})).rejects.toBeInstanceOf(ConflictError);
    await expect(df.write(T(NOW - 1), {}, bodyOf('y'), {})).rejects.toBeInstanceOf(ConflictError);
    await expect(df.writeTombstone(T(NOW))).rejects.toBeInstanceOf(ConflictError);
    await expect(df.writeMeta(T(NOW), {})).rejects.toBeInstanceOf(ConflictError);
  });

  it('fallocate_reserve: between two statfs calls, the writes let through count as spent', async () => {
    const devPath = join(tree.devices, 'sda');
    const st = statfsSync(devPath);
    const free = st.bavail * st.bsize;
    const GiB = 2 ** 30;
    // The clock stands still here, so the first statfs serves both checks.
    const near = await makeTree({ devices: tree.devices, fallocateReserve: { bytes: free - GiB }, now: () => NOW });
    await near.mgr.checkReserve(devPath, 0.6 * GiB);
    await expect(near.mgr.checkReserve(devPath, 0.6 * GiB)).rejects.toThrow(/fallocate_reserve/);
    await near.mgr.checkReserve(devPath, 0.3 * GiB);
    await near.cleanup();
  });

  it('507 for a missing device, an unmounted one with mount_check, and under fallocate_reserve (tombstones still accepted)', async () => {
    await expect(tree.mgr.diskFile('sdz', 1, 0, 'a', 'c', 'o').open()).rejects.toBeInstanceOf(InsufficientStorageError);
    const mounted = await makeTree({ mountCheck: true });
    try {
      await expect(mounted.mgr.checkDevice('sda')).rejects.toThrow(/not mounted/);
    } finally {
      await mounted.cleanup();
    }
    const full = await makeTree({ fallocateReserve: { percent: 100 }, now: () => NOW });
    try {
      const df = full.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
      await expect(df.write(T(NOW), {}, bodyOf('x'), { contentLength: 1 })).rejects.toBeInstanceOf(InsufficientStorageError);
      await expect(df.writeMeta(T(NOW), {})).rejects.toBeInstanceOf(InsufficientStorageError);
      await df.writeTombstone(T(NOW));
      expect((await df.open()).kind).toBe('tombstone');
    } finally {
      await full.cleanup();
    }
    const bytes = await makeTree({ fallocateReserve: { bytes: 2 ** 60 } });
    try {
      const df = bytes.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
      await expect(df.write(T(NOW), {}, bodyOf('x'), {})).rejects.toBeInstanceOf(InsufficientStorageError);
    } finally {
      await bytes.cleanup();
    }
  });
});

describe('cleanup rules on write (checklist 29-31)', () => {
  const files = async (df: { hashDir: string }): Promise<string[]> => (await readdir(df.hashDir)).sort();

  it('a newer .data removes older .data/.ts/.meta', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.write(T(NOW - 30), {}, bodyOf('1'), {});
    await df.writeMeta(T(NOW - 20), { 'X-Object-Meta-A': '1' });
    expect(await files(df)).toEqual([`${T(NOW - 30).internal}.data`, `${T(NOW - 20).internal}.meta`]);
    await df.write(T(NOW - 10), {}, bodyOf('2'), {});
    expect(await files(df)).toEqual([`${T(NOW - 10).internal}.data`]);
    await df.writeTombstone(T(NOW - 5));
    expect(await files(df)).toEqual([`${T(NOW - 5).internal}.ts`]);
    await df.write(T(NOW), {}, bodyOf('3'), {});
    expect(await files(df)).toEqual([`${T(NOW).internal}.data`]);
  });

  it('a .meta newer than the .data overrides user metadata; POST semantics', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.write(T(NOW - 30), { 'Content-Type': 'a/b', 'X-Object-Meta-Old': 'x', 'X-Object-Sysmeta-S3': 'keep' }, bodyOf('1'), {});
    await df.writeMeta(T(NOW - 20), { 'X-Object-Meta-New': 'y' });
    const st = await df.open();
    if (st.kind !== 'object') throw new Error('expected object');
    expect(st.metaTimestamp?.internal).toBe(T(NOW - 20).internal);
    expect(st.timestamp.internal).toBe(T(NOW - 30).internal);
    expect(st.metadata['X-Object-Meta-New']).toBe('y');
    expect(st.metadata['X-Object-Meta-Old']).toBeUndefined();
    expect(st.metadata['X-Object-Sysmeta-S3']).toBe('keep');
    expect(st.metadata['Content-Type']).toBe('a/b');
    expect(st.metadata['X-Timestamp']).toBe(T(NOW - 20).internal);
    expect(st.metadata['Content-Length']).toBe('1');
  });

  it('an overwritten or deleted body is unlinked off the event loop, before the files newer than it, and its folder still goes', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.write(T(NOW - 30), {}, bodyOf('1'), {});
    await df.writeMeta(T(NOW - 25), { 'X-Object-Meta-A': '1' });
    await writeFile(join(df.hashDir, `${T(NOW - 20).internal}.ts`), '');
    // With an obsolete body, every obsolete file is handed over, the body first, and nothing is
    // unlinked directly.
    let handed: string[] = [];
    const choice = cleanupHashDirSync(df.hashDir, NOW, 604800, (obsolete) => (handed = obsolete));
    expect(handed).toEqual([join(df.hashDir, `${T(NOW - 30).internal}.data`), join(df.hashDir, `${T(NOW - 25).internal}.meta`)]);
    expect(choice?.keep.map((f) => f.name)).toEqual([`${T(NOW - 20).internal}.ts`]);
    expect(await files(df)).toEqual([`${T(NOW - 30).internal}.data`, `${T(NOW - 25).internal}.meta`, `${T(NOW - 20).internal}.ts`]);
    // The async cleanup returns its promise with the small obsolete file still there: it goes
    // only once the body's unlink (on the thread pool, maybe done already) has come back.
    // Unlinked directly, both would be gone by now.
    const cleaning = cleanupHashDir(df.hashDir, NOW, 604800);
    expect(readdirSync(df.hashDir)).toContain(`${T(NOW - 25).internal}.meta`);
    await cleaning;
    expect(await files(df)).toEqual([`${T(NOW - 20).internal}.ts`]);

    // A tombstone already past reclaim_age over an object: the body goes before the tombstone
    // (a listing in between must not find the deleted object alone), then the folder.
    const old = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'old');
    await old.write(T(NOW - 604800 - 100), {}, bodyOf('x'), {});
    await writeFile(join(old.hashDir, `${T(NOW - 604800 - 1).internal}.ts`), '');
    const reclaiming = cleanupHashDir(old.hashDir, NOW, 604800);
    expect(readdirSync(old.hashDir)).toContain(`${T(NOW - 604800 - 1).internal}.ts`);
    expect(await reclaiming).toBeUndefined();
    await expect(stat(old.hashDir)).rejects.toThrow(/ENOENT/);

    // Through writes: an overwrite leaves only the new body; a tombstone past reclaim_age over an
    // object removes the folder.
    await df.write(T(NOW - 10), {}, bodyOf('2'), {});
    expect(await files(df)).toEqual([`${T(NOW - 10).internal}.data`]);
    await old.write(T(NOW - 604800 - 100), {}, bodyOf('x'), {});
    await old.writeTombstone(T(NOW - 604800 - 1));
    await expect(stat(old.hashDir)).rejects.toThrow(/ENOENT/);
  });

  it('a tombstone older than reclaim_age goes; a fresh one stays', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.writeTombstone(T(NOW - 604800 - 1));
    await expect(stat(df.hashDir)).rejects.toThrow(/ENOENT/);
    await df.writeTombstone(T(NOW - 604800 + 10));
    expect(await files(df)).toEqual([`${T(NOW - 604800 + 10).internal}.ts`]);
  });
});

describe('crash points', () => {
  it('a write that died before its link leaves the old object; start-up and age sweeps remove its tmp file', async () => {
    const df = tree.mgr.diskFile('sda', 2, 0, 'a', 'c', 'o');
    await df.write(T(NOW - 10), {}, bodyOf('old'), {});
    const tmpDir = join(tree.devices, 'sda', 'tmp');
    // A dead writer's half-written body (PID 999999999 does not exist) and a live one's.
    await writeFile(join(tmpDir, `999999999.00112233.0.2.${df.suffix}.tmp`), 'half a bo');
    const liveName = `${process.pid}.44556677.0.2.${df.suffix}.tmp`;
    await writeFile(join(tmpDir, liveName), 'in progress');
    const st = await df.open();
    expect(st).toMatchObject({ kind: 'object', timestamp: T(NOW - 10) });
    if (st.kind === 'object') expect((await readAll(df.reader(st))).toString()).toBe('old');
    expect(await tree.mgr.removeStaleTmp()).toBe(1);
    expect(await readdir(tmpDir)).toEqual([liveName]);
    // The age sweep removes even a live writer's file once it is old enough.
    expect(await tree.mgr.cleanupTmp('sda', 3600)).toBe(0);
    const later = await makeTree({ devices: tree.devices, now: () => Date.now() / 1000 + 7200 });
    try {
      expect(await later.mgr.cleanupTmp('sda', 3600)).toBe(1);
    } finally {
      await later.cleanup();
    }
    expect(await readdir(tmpDir)).toEqual([]);
  });
});

describe('quarantine', () => {
  it('a flipped byte: the full read fails after quarantining, the next open is absent', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    const body = Buffer.alloc(300 * 1024, 1);
    await df.write(T(NOW), {}, bodyOf(body), {});
    const path = join(df.hashDir, `${T(NOW).internal}.data`);
    const raw = await readFile(path);
    raw[1000] = 2;
    await writeFile(path, raw);
    const st = await df.open();
    if (st.kind !== 'object') throw new Error('expected object');
    // A range read is not verified.
    expect((await readAll(df.reader(st, { start: 0, end: 9 }))).length).toBe(10);
    await expect(readAll(df.reader(st))).rejects.toThrow(/body CRC-32 [0-9a-f]{8} differs from the recorded [0-9a-f]{8}/);
    expect((await df.open()).kind).toBe('absent');
    expect(await tree.mgr.quarantineCount('sda')).toBe(1);
    expect(await readdir(join(tree.devices, 'sda', 'quarantined', 'objects', df.hash))).toEqual([`${T(NOW).internal}.data`]);
  });

  it('a small object with a flipped byte', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.write(T(NOW), {}, bodyOf('hello'), {});
    const path = join(df.hashDir, `${T(NOW).internal}.data`);
    const raw = await readFile(path);
    raw[0] = 'j'.charCodeAt(0);
    await writeFile(path, raw);
    const st = await df.open();
    if (st.kind !== 'object') throw new Error('expected object');
    await expect(readAll(df.reader(st))).rejects.toThrow(/CRC-32/);
    expect((await df.open()).kind).toBe('absent');
  });

  it('records the body CRC-32 beside the ETag, and hides it from the object metadata served', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    const body = Buffer.from('some bytes to checksum');
    await df.write(T(NOW), { 'X-Object-Meta-K': 'v' }, bodyOf(body), {});
    const raw = readMetadataFile(join(df.hashDir, `${T(NOW).internal}.data`));
    expect(raw.metadata[BODY_CRC32_KEY]).toBe(crc32(body).toString(16).padStart(8, '0'));
    expect(raw.metadata['ETag']).toBe(md5(body));
    // A POST (.meta) cannot replace it.
    await df.writeMeta(T(NOW + 1), { [BODY_CRC32_KEY]: '00000000', 'X-Object-Meta-K': 'w' });
    const st = await df.open();
    if (st.kind !== 'object') throw new Error('expected object');
    expect(st.metadata[BODY_CRC32_KEY]).toBe(raw.metadata[BODY_CRC32_KEY]);
    expect(await readAll(df.reader(st))).toEqual(body);
  });

  it('a file that records no CRC-32 (older format) is checked against its MD5 ETag', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    const body = Buffer.alloc(700 * 1024, 7);
    await df.write(T(NOW), {}, bodyOf(body), {});
    const path = join(df.hashDir, `${T(NOW).internal}.data`);
    const { [BODY_CRC32_KEY]: recorded, ...older } = readMetadataFile(path).metadata;
    expect(recorded).toBeDefined();
    await writeFile(path, Buffer.concat([body, encodeTrailer(older)]));
    let st = await df.open();
    if (st.kind !== 'object') throw new Error('expected object');
    expect(await readAll(df.reader(st))).toEqual(body);
    const flipped = Buffer.from(body);
    flipped[500 * 1024] = 8;
    await writeFile(path, Buffer.concat([flipped, encodeTrailer(older)]));
    st = await df.open();
    if (st.kind !== 'object') throw new Error('expected object');
    await expect(readAll(df.reader(st))).rejects.toThrow(`body MD5 ${md5(flipped)} differs from ETag ${md5(body)}`);
    expect((await df.open()).kind).toBe('absent');
  });

  it('with read_checksum = md5, full reads are checked against the MD5 ETag even when a CRC-32 is recorded', async () => {
    const md5Tree = await makeTree({ readChecksum: 'md5' });
    try {
      const df = md5Tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
      const body = Buffer.alloc(600 * 1024, 3);
      await df.write(T(NOW), {}, bodyOf(body), {});
      const path = join(df.hashDir, `${T(NOW).internal}.data`);
      expect(readMetadataFile(path).metadata[BODY_CRC32_KEY]).toBeDefined();
      const raw = await readFile(path);
      raw[100] = 4;
      await writeFile(path, raw);
      const st = await df.open();
      if (st.kind !== 'object') throw new Error('expected object');
      await expect(readAll(df.reader(st))).rejects.toThrow(/body MD5 [0-9a-f]{32} differs from ETag/);
      expect(await md5Tree.mgr.quarantineCount('sda')).toBe(1);
    } finally {
      await md5Tree.cleanup();
    }
  });

  it('a malformed recorded CRC-32 is quarantined on open', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.write(T(NOW), {}, bodyOf('hello'), {});
    const path = join(df.hashDir, `${T(NOW).internal}.data`);
    const md = readMetadataFile(path).metadata;
    await writeFile(path, Buffer.concat([Buffer.from('hello'), encodeTrailer({ ...md, [BODY_CRC32_KEY]: 'XYZ' })]));
    expect((await df.open()).kind).toBe('absent');
    expect(await tree.mgr.quarantineCount('sda')).toBe(1);
  });

  it('a .data whose size disagrees with its metadata is quarantined on open', async () => {
    const df = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o');
    await df.write(T(NOW), {}, bodyOf('hello'), {});
    const path = join(df.hashDir, `${T(NOW).internal}.data`);
    const raw = await readFile(path);
    await writeFile(path, Buffer.concat([Buffer.from('X'), raw]));
    expect((await df.open()).kind).toBe('absent');
    expect(await tree.mgr.quarantineCount('sda')).toBe(1);
    // A truncated file (no trailer) too.
    const df2 = tree.mgr.diskFile('sda', 1, 0, 'a', 'c', 'o2');
    await df2.write(T(NOW), {}, bodyOf('hello'), {});
    await writeFile(join(df2.hashDir, `${T(NOW).internal}.data`), 'hel');
    expect((await df2.open()).kind).toBe('absent');
    expect(await tree.mgr.quarantineCount('sda')).toBe(2);
  });
});

describe('parseFallocateReserve', () => {
  it('reads bytes and percentages as Swift does', async () => {
    const { parseFallocateReserve } = await import('./config.js');
    expect(parseFallocateReserve('1%')).toEqual({ percent: 1 });
    expect(parseFallocateReserve('0.5 %')).toEqual({ percent: 0.5 });
    expect(parseFallocateReserve('1048576')).toEqual({ bytes: 1048576 });
    expect(() => parseFallocateReserve('lots')).toThrow('fallocate_reserve "lots": expected a number of bytes or a percentage like 1%');
  });
});
