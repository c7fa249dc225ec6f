import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Timestamp } from '@swiftlet/common';
import { WHOLE_WRITE_BYTES } from './disk-file.js';
import { disableNativeAddon, nativeAddon, nativeAddonUnavailable } from './native.js';
import { bodyOf, makeTree, readAll, type TestTree } from './test-helpers.js';

let tree: TestTree;
beforeEach(async () => {
  tree = await makeTree({ now: () => 1_700_000_010 });
});
afterEach(async () => {
  disableNativeAddon(false);
  await tree.cleanup();
});

describe('native linkAndSync', () => {
  it('is built and loaded (make build)', () => {
    expect(nativeAddonUnavailable()).toBeUndefined();
    expect(nativeAddon()).not.toBeNull();
  });

  it('journals the suffix twice around the link, replaces a file of the same name, unlinks the tmp name, says whether it made the folder', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const part = join(tree.root, 'part');
    const dir = join(part, 'abc', 'hash');
    mkdirSync(dir, { recursive: true });
    const journal = join(part, 'hashes.invalid');
    const tmp = join(tree.root, 'a.tmp');
    writeFileSync(tmp, 'first');
    expect(await addon.linkAndSync(tmp, join(dir, '1.data'), journal, 'abc\n')).toBe(0);
    expect([readFileSync(join(dir, '1.data'), 'utf8'), existsSync(tmp), readFileSync(journal, 'utf8')]).toEqual(['first', false, 'abc\nabc\n']);
    writeFileSync(tmp, 'second');
    expect(await addon.linkAndSync(tmp, join(dir, '1.data'), journal, 'abc\n')).toBe(0);
    expect([readFileSync(join(dir, '1.data'), 'utf8'), existsSync(tmp), readdirSync(dir)]).toEqual(['second', false, ['1.data']]);
    writeFileSync(tmp, 'third');
    expect(await addon.linkAndSync(tmp, join(part, 'abc', 'other', '1.data'), journal, 'abc\n')).toBe(1);
    expect(readFileSync(journal, 'utf8')).toBe('abc\n'.repeat(6));
  });

  it('given the content, creates the tmp file with it first (never over an existing one)', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const part = join(tree.root, 'part');
    const journal = join(part, 'hashes.invalid');
    const tmp = join(tree.root, 'c.tmp');
    const target = join(part, 'def', 'hash', '1.data');
    // The partition's folder is made too, for its journal.
    expect(await addon.linkAndSync(tmp, target, journal, 'def\n', Buffer.from('whole body'))).toBe(1);
    expect([readFileSync(target, 'utf8'), existsSync(tmp), readFileSync(journal, 'utf8')]).toEqual(['whole body', false, 'def\ndef\n']);
    expect(await addon.linkAndSync(tmp, join(part, 'def', 'empty', '1.ts'), journal, 'def\n', Buffer.alloc(0))).toBe(1);
    expect(readFileSync(join(part, 'def', 'empty', '1.ts'), 'utf8')).toBe('');

    writeFileSync(tmp, 'someone else\'s');
    const target2 = join(part, 'def', 'hash', '2.data');
    const err = (await addon.linkAndSync(tmp, target2, journal, 'def\n', Buffer.from('x')).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect({ code: err.code, syscall: err.syscall, path: err.path }).toEqual({ code: 'EEXIST', syscall: 'open', path: tmp });
    expect([readFileSync(tmp, 'utf8'), existsSync(target2)]).toEqual(['someone else\'s', false]);
  });

  it('makes missing folders; fails as Node fs calls do: code, negative errno, syscall and path', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const tmp = join(tree.root, 'b.tmp');
    writeFileSync(tmp, 'x');
    const journal = join(tree.root, 'p', 'hashes.invalid');
    const deep = join(tree.root, 'p', 'sfx', 'hash', '1.data');
    await addon.linkAndSync(tmp, deep, journal, 'sfx\n');
    expect([readFileSync(deep, 'utf8'), existsSync(tmp)]).toEqual(['x', false]);

    const missingTmp = join(tree.root, 'never-written.tmp');
    const target = join(tree.root, 'p', 'sfx', 'hash', '2.data');
    const err = (await addon.linkAndSync(missingTmp, target, journal, 'sfx\n').catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(err).toBeInstanceOf(Error);
    expect({ code: err.code, errno: err.errno, syscall: err.syscall, path: err.path }).toEqual({ code: 'ENOENT', errno: -2, syscall: 'link', path: target });

    writeFileSync(tmp, 'y');
    writeFileSync(join(tree.root, 'a-file'), '');
    const underFile = join(tree.root, 'a-file', 'hash', '1.data');
    const notDir = (await addon.linkAndSync(tmp, underFile, join(tree.root, 'a-file', 'hashes.invalid'), 'sfx\n').catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect({ code: notDir.code, syscall: notDir.syscall, path: notDir.path }).toEqual({ code: 'ENOTDIR', syscall: 'open', path: join(tree.root, 'a-file', 'hashes.invalid') });
    expect(existsSync(tmp)).toBe(true);
    expect(() => (addon.linkAndSync as (...a: unknown[]) => unknown)(tmp, target, journal, 'sfx\n', 'not a Buffer')).toThrow(TypeError);
    expect(() => (addon.linkAndSync as (...a: unknown[]) => unknown)(tmp, target, journal)).toThrow(TypeError);
  });
});

describe('native commitFiles (group commit of small writes)', () => {
  it('creates, journals and publishes each write; one failing write fails alone', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const part = join(tree.root, 'objects', '9');
    mkdirSync(join(part, 'aaa', 'old'), { recursive: true });
    writeFileSync(join(part, 'aaa', 'old', '1.data'), 'old');
    const taken = join(tree.root, 'taken.tmp');
    writeFileSync(taken, 'someone else\'s');
    const writes = [
      { tmp: join(tree.root, '1.tmp'), target: join(part, 'aaa', 'old', '2.data'), line: 'aaa\n', body: 'replaces old' },
      { tmp: taken, target: join(part, 'bbb', 'x', '1.data'), line: 'bbb\n', body: 'never written' },
      { tmp: join(tree.root, '3.tmp'), target: join(part, 'ccc', 'new', '1.data'), line: 'ccc\n', body: '' },
      { tmp: join(tree.root, '4.tmp'), target: join(tree.root, 'other-part', 'ddd', 'new', '1.ts'), line: 'ddd\n', body: 'x'.repeat(5000) },
    ];
    const journals = writes.map((w, i) => (i === 3 ? join(tree.root, 'other-part', 'hashes.invalid') : join(part, 'hashes.invalid')));
    const bodies = writes.map((w) => Buffer.from(w.body));
    const results = await addon.commitFiles(
      tree.root,
      writes.map((w) => w.tmp),
      writes.map((w) => w.target),
      journals,
      writes.map((w) => w.line),
      bodies,
    );
    expect(results[0]).toBe(0);
    expect(results[2]).toBe(1);
    expect(results[3]).toBe(1);
    const failed = results[1] as NodeJS.ErrnoException;
    expect({ code: failed.code, syscall: failed.syscall, path: failed.path }).toEqual({ code: 'EEXIST', syscall: 'open', path: taken });
    expect(readFileSync(taken, 'utf8')).toBe('someone else\'s');
    expect(existsSync(join(part, 'bbb'))).toBe(false);
    for (const i of [0, 2, 3]) {
      const w = writes[i] as (typeof writes)[number];
      expect([readFileSync(w.target, 'utf8'), existsSync(w.tmp)]).toEqual([w.body, false]);
    }
    expect(readFileSync(join(part, 'hashes.invalid'), 'utf8')).toBe('aaa\nccc\naaa\nccc\n');
    expect(readFileSync(journals[3] as string, 'utf8')).toBe('ddd\nddd\n');
    expect(() => (addon.commitFiles as (...a: unknown[]) => unknown)(tree.root, [], [], [], [], [])).toThrow(TypeError);
    expect(() => (addon.commitFiles as (...a: unknown[]) => unknown)(tree.root, ['a'], ['b'], ['c'], ['d\n'], ['not a Buffer'])).toThrow(TypeError);
    expect(() => (addon.commitFiles as (...a: unknown[]) => unknown)(tree.root, ['a'], ['b'], ['c'], ['d\n'], [])).toThrow(TypeError);
  });

  it('many concurrent small writes of one device go in shared commits, each readable afterwards', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const commitFiles = addon.commitFiles;
    let shared = 0;
    addon.commitFiles = (...args) => {
      shared += args[1].length;
      return commitFiles(...args);
    };
    const writes = Array.from({ length: 64 }, (_, i) => i);
    await Promise.all(
      writes.map(async (i) => {
        const df = tree.mgr.diskFile('sda', i % 4, 0, 'a', 'c', `o${i}`);
        await df.write(Timestamp.fromSeconds(1_700_000_000), {}, bodyOf(`body ${i}`), { contentLength: `body ${i}`.length });
        if (i % 8 === 0) await df.writeTombstone(Timestamp.fromSeconds(1_700_000_001));
      }),
    );
    for (const i of writes) {
      const df = tree.mgr.diskFile('sda', i % 4, 0, 'a', 'c', `o${i}`);
      const state = await df.open();
      if (i % 8 === 0) {
        expect(state.kind).toBe('tombstone');
        continue;
      }
      if (state.kind !== 'object') throw new Error(`o${i}: expected an object, got ${state.kind}`);
      expect((await readAll(df.reader(state))).toString()).toBe(`body ${i}`);
    }
    expect(readdirSync(join(tree.devices, 'sda', 'tmp'))).toEqual([]);
    addon.commitFiles = commitFiles;
    // All but the first write, which found no commit running, waited and went in a shared one.
    expect(shared).toBeGreaterThan(32);
  });
});

describe.each([
  ['with the native module', false],
  ['without it (one thread-pool job per call)', true],
])('publish %s', (_, withoutNative) => {
  it('writes, overwrites and deletes an object in fresh folders', async () => {
    disableNativeAddon(withoutNative);
    expect(nativeAddon() === null).toBe(withoutNative);
    const df = tree.mgr.diskFile('sda', 3, 0, 'a', 'c', `o-${String(withoutNative)}`);
    const t = Timestamp.fromSeconds(1_700_000_000);
    await df.write(t, { 'Content-Type': 'text/plain' }, bodyOf('one'), { contentLength: 3 });
    const t2 = Timestamp.fromSeconds(1_700_000_001);
    await df.write(t2, { 'Content-Type': 'text/plain' }, bodyOf('two!'), { contentLength: 4 });
    const state = await df.open();
    if (state.kind !== 'object') throw new Error(`expected an object, got ${state.kind}`);
    expect((await readAll(df.reader(state))).toString()).toBe('two!');
    await df.writeTombstone(Timestamp.fromSeconds(1_700_000_002));
    expect((await df.open()).kind).toBe('tombstone');
    const hash = tree.mgr.swiftConf.hashPath('a', 'c', `o-${String(withoutNative)}`).hex;
    const hashDir = join(tree.devices, 'sda', 'objects', '3', hash.slice(-3), hash);
    expect(readdirSync(hashDir)).toEqual([`${Timestamp.fromSeconds(1_700_000_002).internal}.ts`]);
    // A second object in the same (now existing) partition: fresh suffix and hash folders.
    const other = tree.mgr.diskFile('sda', 3, 0, 'a', 'c', `other-${String(withoutNative)}`);
    await other.write(t, { 'Content-Type': 'text/plain' }, bodyOf('three'), { contentLength: 5 });
    const otherState = await other.open();
    if (otherState.kind !== 'object') throw new Error(`expected an object, got ${otherState.kind}`);
    expect((await readAll(other.reader(otherState))).toString()).toBe('three');
    expect(readdirSync(join(tree.devices, 'sda', 'tmp'))).toEqual([]);
  });

  it('makes the device\'s tmp folder again when it went away (a wiped or replaced disk)', async () => {
    disableNativeAddon(withoutNative);
    const df = tree.mgr.diskFile('sda', 5, 0, 'a', 'c', `gone-${String(withoutNative)}`);
    await df.write(Timestamp.fromSeconds(1_700_000_000), {}, bodyOf('first'), { contentLength: 5 });
    rmSync(join(tree.devices, 'sda', 'tmp'), { recursive: true });
    await df.write(Timestamp.fromSeconds(1_700_000_001), {}, bodyOf('second'), { contentLength: 6 });
    await df.writeTombstone(Timestamp.fromSeconds(1_700_000_002));
    expect((await df.open()).kind).toBe('tombstone');
    expect(readdirSync(join(tree.devices, 'sda', 'tmp'))).toEqual([]);
  });

  it('streams a body over the size held in memory, and one of unknown length, to the same result', async () => {
    disableNativeAddon(withoutNative);
    const big = Buffer.alloc(WHOLE_WRITE_BYTES + 1, 7);
    const small = Buffer.from('small, length unknown');
    for (const [name, body, contentLength] of [['big', big, big.length], ['unknown', small, undefined]] as const) {
      const df = tree.mgr.diskFile('sda', 4, 0, 'a', 'c', `${name}-${String(withoutNative)}`);
      const { size } = await df.write(Timestamp.fromSeconds(1_700_000_000), {}, bodyOf(body), contentLength === undefined ? {} : { contentLength });
      expect(size).toBe(body.length);
      const state = await df.open();
      if (state.kind !== 'object') throw new Error(`expected an object, got ${state.kind}`);
      expect((await readAll(df.reader(state))).equals(body)).toBe(true);
    }
    expect(readdirSync(join(tree.devices, 'sda', 'tmp'))).toEqual([]);
  });
});

describe('native writeFiles and publishFiles (the replication receiver\'s batches)', () => {
  it('creates each file with its bytes, then publishes them into new and existing folders', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const bodies = [Buffer.from('one'), Buffer.alloc(0), Buffer.alloc(70_000, 7)];
    const tmps = bodies.map((_, i) => join(tree.root, `t${i}.tmp`));
    await addon.writeFiles(tmps, Buffer.concat(bodies), bodies.map((b) => b.length));
    expect(tmps.map((t) => readFileSync(t))).toEqual(bodies);
    mkdirSync(join(tree.root, 'p', 'abc', 'h1'), { recursive: true });
    const targets = [join(tree.root, 'p', 'abc', 'h1', '1.data'), join(tree.root, 'p', 'abc', 'h2', '1.ts'), join(tree.root, 'q', 'def', 'h3', '2.data')];
    const made = await addon.publishFiles(tree.root, tmps, targets);
    expect([...made]).toEqual([0, 1, 1]);
    expect(targets.map((t) => readFileSync(t))).toEqual(bodies);
    expect(tmps.some((t) => existsSync(t))).toBe(false);
  });

  it('fails as Node fs calls do, leaving what came before the failure done', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const a = join(tree.root, 'a.tmp');
    writeFileSync(a, 'exists');
    // O_EXCL: an existing name is never overwritten.
    await expect(addon.writeFiles([join(tree.root, 'new.tmp'), a], Buffer.from('xy'), [1, 1])).rejects.toMatchObject({ code: 'EEXIST', syscall: 'open', path: a });
    expect([readFileSync(join(tree.root, 'new.tmp'), 'utf8'), readFileSync(a, 'utf8')]).toEqual(['x', 'exists']);
    const gone = join(tree.root, 'gone.tmp');
    await expect(addon.publishFiles(tree.root, [a, gone], [join(tree.root, 'h', '1.data'), join(tree.root, 'h', '2.data')])).rejects.toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'rename' });
    expect(readdirSync(join(tree.root, 'h'))).toEqual(['1.data']);
    // Through a folder fd opened before the files were written (the receiver's way); the fd stays open.
    const dirFd = openSync(tree.root, 'r');
    try {
      writeFileSync(a, 'through an fd');
      expect([...(await addon.publishFiles(dirFd, [a], [join(tree.root, 'h2', '1.data')]))]).toEqual([1]);
      expect(readFileSync(join(tree.root, 'h2', '1.data'), 'utf8')).toBe('through an fd');
      expect(fstatSync(dirFd).isDirectory()).toBe(true);
    } finally {
      closeSync(dirFd);
    }
    // Bad arguments are refused before anything is queued.
    expect(() => addon.writeFiles(['x'], Buffer.alloc(1), [2])).toThrow(/one length per path/);
    expect(() => addon.publishFiles(tree.root, ['x'], [])).toThrow(/two arrays of paths of one length/);
  });
});
