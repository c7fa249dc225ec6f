import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Timestamp } from '@swiftlet/common';
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

  it('links the tmp file, replaces a file of the same name, skips a folder that is gone, unlinks the tmp name', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const dir = join(tree.root, 'hash');
    mkdirSync(dir);
    const tmp = join(tree.root, 'a.tmp');
    writeFileSync(tmp, 'first');
    await addon.linkAndSync(tmp, join(dir, '1.data'), [dir, join(tree.root, 'gone')]);
    expect([readFileSync(join(dir, '1.data'), 'utf8'), existsSync(tmp)]).toEqual(['first', false]);
    writeFileSync(tmp, 'second');
    await addon.linkAndSync(tmp, join(dir, '1.data'), [dir]);
    expect([readFileSync(join(dir, '1.data'), 'utf8'), existsSync(tmp), readdirSync(dir)]).toEqual(['second', false, ['1.data']]);
  });

  it('makes missing folders; fails as Node fs calls do: code, negative errno, syscall and path', async () => {
    const addon = nativeAddon();
    if (!addon) throw new Error('native module not loaded');
    const tmp = join(tree.root, 'b.tmp');
    writeFileSync(tmp, 'x');
    const deep = join(tree.root, 'p', 'sfx', 'hash', '1.data');
    await addon.linkAndSync(tmp, deep, []);
    expect([readFileSync(deep, 'utf8'), existsSync(tmp)]).toEqual(['x', false]);

    const missingTmp = join(tree.root, 'never-written.tmp');
    const target = join(tree.root, 'p', 'sfx', 'hash', '2.data');
    const err = (await addon.linkAndSync(missingTmp, target, []).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(err).toBeInstanceOf(Error);
    expect({ code: err.code, errno: err.errno, syscall: err.syscall, path: err.path }).toEqual({ code: 'ENOENT', errno: -2, syscall: 'link', path: target });

    writeFileSync(tmp, 'y');
    writeFileSync(join(tree.root, 'a-file'), '');
    const underFile = join(tree.root, 'a-file', 'hash', '1.data');
    const notDir = (await addon.linkAndSync(tmp, underFile, []).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect({ code: notDir.code, syscall: notDir.syscall, path: notDir.path }).toEqual({ code: 'ENOTDIR', syscall: 'mkdir', path: join(tree.root, 'a-file', 'hash') });
    expect(existsSync(tmp)).toBe(true);
    expect(() => (addon.linkAndSync as (...a: unknown[]) => unknown)(tmp, target, 'not an array')).toThrow(TypeError);
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
    // Bad arguments are refused before anything is queued.
    expect(() => addon.writeFiles(['x'], Buffer.alloc(1), [2])).toThrow(/one length per path/);
    expect(() => addon.publishFiles(tree.root, ['x'], [])).toThrow(/two arrays of paths of one length/);
  });
});
