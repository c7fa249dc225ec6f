import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { BadRequestError, Timestamp } from '@swiftlet/common';
import { BODY_CRC32_KEY, encodeTrailer } from './metadata-file.js';
import { disableNativeAddon } from './native.js';
import { bodyOf, makeTree, readAll, type TestTree } from './test-helpers.js';

const md5Hex = (b: Buffer): string => createHash('md5').update(b).digest('hex');

const T = (s: number): Timestamp => Timestamp.fromSeconds(s);
const NOW = 1_700_000_000;

let src: TestTree;
let dst: TestTree;
beforeEach(async () => {
  src = await makeTree({ now: () => NOW });
  dst = await makeTree({ now: () => NOW });
});
afterEach(async () => {
  await src.cleanup();
  await dst.cleanup();
});

async function walk(dir: string, root = dir): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names.sort()) {
    const p = join(dir, n);
    out.push(relative(root, p));
    if ((await stat(p)).isDirectory()) out.push(...(await walk(p, root)));
  }
  return out;
}

interface Entry {
  name: string;
  content?: Buffer;
  type?: 'file' | 'symlink' | 'link' | 'directory' | 'character-device';
  size?: number;
  linkname?: string;
}

async function tarOf(entries: Entry[], opts: { cutAt?: number; noEnd?: boolean } = {}): Promise<Buffer> {
  const pack = tarStream.pack();
  const done = readAll(pack as unknown as NodeJS.ReadableStream);
  for (const e of entries) {
    const header: tarStream.Header = { name: e.name, type: e.type ?? 'file' } as tarStream.Header;
    if (e.linkname) header.linkname = e.linkname;
    if (e.type === undefined || e.type === 'file') {
      await new Promise<void>((resolve, reject) => pack.entry(header, e.content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())));
    } else {
      pack.entry(header);
    }
  }
  pack.finalize();
  let buf = await done;
  if (opts.noEnd) buf = buf.subarray(0, buf.length - 1024);
  if (opts.cutAt !== undefined) buf = buf.subarray(0, opts.cutAt);
  return buf;
}

/** What the sender would send for these suffixes: every surviving file as a tar entry. */
async function senderTar(t: TestTree, part: number, suffixes: string[], only?: Set<string>): Promise<Buffer> {
  const entries: Entry[] = [];
  for await (const { suffix, hash, files } of t.mgr.listSuffixFiles('sda', part, 0, suffixes)) {
    for (const f of files) {
      const name = `${suffix}/${hash}/${f}`;
      if (only && !only.has(name)) continue;
      entries.push({ name, content: await readFile(join(t.mgr.partitionPath('sda', 0, part), suffix, hash, f)) });
    }
  }
  return tarOf(entries);
}

describe('sync: listSuffixFiles, missingFiles, receiveTar', () => {
  // With the native module small files are created and published in batches (two syncfs per
  // push); without it each file is synced and published as a PUT's is. Both must agree. 300
  // objects cross a batch's 256 files; o7 is over the 64 KiB held in memory and streams to disk.
  it.each([
    ['in native batches', false],
    ['file by file, without the native module', true],
  ])('brings a receiver to the same hashes, keeping its newer versions (%s)', async (_how, withoutNative) => {
    disableNativeAddon(withoutNative);
    onTestFinished(() => disableNativeAddon(false));
    const big = randomBytes(200 * 1024);
    for (let i = 0; i < 300; i++) {
      const df = src.mgr.diskFile('sda', 0, 0, 'a', 'c', `o${i}`);
      await df.write(T(NOW - 50), { 'Content-Type': 'x/y' }, bodyOf(i === 7 ? big : `body ${i}`), {});
      if (i % 3 === 0 && i < 12) await df.writeMeta(T(NOW - 40), { 'X-Object-Meta-I': String(i) });
      if (i % 4 === 1 && i < 12) await df.writeTombstone(T(NOW - 30));
    }
    // The receiver already holds a newer o2 and the same o5.
    await dst.mgr.diskFile('sda', 0, 0, 'a', 'c', 'o2').write(T(NOW), {}, bodyOf('newer'), {});
    const srcHashes = await src.mgr.getHashes('sda', 0, 0);
    const suffixes = Object.keys(srcHashes);
    const offered: string[] = [];
    for await (const { suffix, hash, files } of src.mgr.listSuffixFiles('sda', 0, 0, suffixes)) {
      for (const f of files) offered.push(`${suffix}/${hash}/${f}`);
    }
    const o2 = src.mgr.diskFile('sda', 0, 0, 'a', 'c', 'o2');
    expect(offered.filter((p) => p.includes(o2.hash))).toEqual([`${o2.suffix}/${o2.hash}/${T(NOW - 50).internal}.data`]);
    const wanted = await dst.mgr.missingFiles('sda', 0, 0, offered);
    expect(wanted).not.toContain(`${o2.suffix}/${o2.hash}/${T(NOW - 50).internal}.data`);
    expect(wanted.length).toBe(offered.length - 1);
    // Send everything anyway: what the receiver does not want is skipped.
    const res = await dst.mgr.receiveTar('sda', 0, 0, Readable.from([await senderTar(src, 0, suffixes)]), { partPower: 0 });
    expect(res).toEqual({ received: offered.length - 1, skipped: 1 });
    const dstHashes = await dst.mgr.getHashes('sda', 0, 0);
    expect(dstHashes[o2.suffix]).not.toBe(srcHashes[o2.suffix]);
    delete dstHashes[o2.suffix];
    const expected = { ...srcHashes };
    delete expected[o2.suffix];
    expect(dstHashes).toEqual(expected);
    const st = await dst.mgr.diskFile('sda', 0, 0, 'a', 'c', 'o3').open();
    expect(st).toMatchObject({ kind: 'object', metadata: { 'X-Object-Meta-I': '3', name: '/a/c/o3' } });
    const o7 = dst.mgr.diskFile('sda', 0, 0, 'a', 'c', 'o7');
    const st7 = await o7.open();
    expect(st7.kind).toBe('object');
    if (st7.kind === 'object') expect((await readAll(o7.reader(st7))).equals(big)).toBe(true);
    expect(await readdir(join(dst.devices, 'sda', 'tmp'))).toEqual([]);
    // A second identical push changes nothing.
    expect(await dst.mgr.missingFiles('sda', 0, 0, offered)).toEqual([]);
  });

  it('refuses hostile streams with a one-line reason and leaves the partition unchanged', async () => {
    const df = dst.mgr.diskFile('sda', 0, 0, 'a', 'c', 'existing');
    await df.write(T(NOW - 10), {}, bodyOf('keep me'), {});
    const before = await walk(join(dst.devices, 'sda', 'objects'));
    const hash = '0123456789abcdef0123456789abc' + df.suffix; // partition 0 under part power 7
    const good = `${df.suffix}/${hash}/${T(NOW).internal}.ts`;
    const ts = encodeTrailer({ 'X-Timestamp': T(NOW).internal });
    const goodEntry: Entry = { name: good, content: ts };
    const dataBody = Buffer.from('payload');
    const dataFile = (md: Record<string, string>): Buffer => Buffer.concat([dataBody, encodeTrailer(md)]);
    const dataName = `${df.suffix}/${hash}/${T(NOW).internal}.data`;
    const cases: [string, Buffer, string, { maxEntryBytes?: number; partPower?: number }?][] = [
      ['dot-dot', await tarOf([goodEntry, { name: `../${df.suffix}/${hash}/x.data`, content: ts }]), `tar entry "../${df.suffix}/${hash}/x.data": not <suffix>/<hash>/<file>`],
      ['absolute', await tarOf([{ name: `/${good}`, content: ts }]), `tar entry "/${good}": not <suffix>/<hash>/<file>`],
      ['symlink', await tarOf([{ name: good, type: 'symlink', linkname: '/etc/passwd' }]), `tar entry "${good}": not a regular file (symlink)`],
      ['hard link', await tarOf([goodEntry, { name: `${df.suffix}/${hash}/${T(NOW + 1).internal}.ts`, type: 'link', linkname: good }]), `tar entry "${df.suffix}/${hash}/${T(NOW + 1).internal}.ts": not a regular file (link)`],
      ['device', await tarOf([{ name: good, type: 'character-device' }]), `tar entry "${good}": not a regular file (character-device)`],
      ['directory', await tarOf([{ name: `${df.suffix}/`, type: 'directory' }]), `tar entry "${df.suffix}/": not a regular file (directory)`],
      ['unknown kind', await tarOf([{ name: `${df.suffix}/${hash}/${T(NOW).internal}.exe`, content: ts }]), `tar entry "${df.suffix}/${hash}/${T(NOW).internal}.exe": file name ${T(NOW).internal}.exe is not <timestamp>.data|.ts|.meta`],
      ['suffix mismatch', await tarOf([{ name: `fff/${hash}/${T(NOW).internal}.ts`, content: ts }]), `tar entry "fff/${hash}/${T(NOW).internal}.ts": suffix fff does not match hash ${hash}`],
      ['other partition', await tarOf([goodEntry]), `tar entry "${good}": hash does not belong to partition 0`, { partPower: 16 }],
      ['oversize', await tarOf([goodEntry, { name: dataName, content: Buffer.alloc(100) }]), `tar entry "${dataName}": 100 bytes exceed the limit of 64`, { maxEntryBytes: 64 }],
      ['garbage file', await tarOf([{ name: good, content: Buffer.from('not a swiftlet file') }]), `tar entry "${good}": no SWM1 trailer`],
      ['etag mismatch', await tarOf([{ name: dataName, content: dataFile({ 'X-Timestamp': T(NOW).internal, 'Content-Length': '7', ETag: 'f'.repeat(32) }) }]), `tar entry "${dataName}": body MD5 does not match its ETag`],
      ['CRC-32 mismatch', await tarOf([{ name: dataName, content: dataFile({ 'X-Timestamp': T(NOW).internal, 'Content-Length': '7', ETag: md5Hex(dataBody), [BODY_CRC32_KEY]: 'deadbeef' }) }]), `tar entry "${dataName}": body CRC-32 does not match the recorded one`],
      ['malformed CRC-32', await tarOf([{ name: dataName, content: dataFile({ 'X-Timestamp': T(NOW).internal, 'Content-Length': '7', ETag: md5Hex(dataBody), [BODY_CRC32_KEY]: 'nothex!!' }) }]), `tar entry "${dataName}": malformed ${BODY_CRC32_KEY}`],
      ['timestamp mismatch', await tarOf([{ name: good, content: encodeTrailer({ 'X-Timestamp': T(NOW - 5).internal }) }]), `tar entry "${good}": X-Timestamp does not match the file name`],
      ['truncated mid-entry', await tarOf([goodEntry, { name: dataName, content: Buffer.alloc(5000) }], { cutAt: 2048 }), 'truncated tar stream'],
      ['truncated at a boundary', await tarOf([goodEntry], { noEnd: true }), 'truncated tar stream'],
      ['not a tar', Buffer.alloc(1536, 0x41), 'bad tar stream: Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?'],
    ];
    for (const [label, buf, message, opts] of cases) {
      const err = await dst.mgr.receiveTar('sda', 0, 0, Readable.from([buf]), { partPower: 7, ...opts }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, label).toBeInstanceOf(BadRequestError);
      expect((err as Error).message, label).toBe(message);
      expect(await walk(join(dst.devices, 'sda', 'objects')), label).toEqual(before);
      expect(await readdir(join(dst.devices, 'sda', 'tmp')), label).toEqual([]);
    }
    // The good entry alone is accepted, and so is a .data that records no CRC-32 (an older file,
    // checked against its MD5 ETag instead).
    expect(await dst.mgr.receiveTar('sda', 0, 0, Readable.from([await tarOf([goodEntry])]), { partPower: 7 })).toEqual({ received: 1, skipped: 0 });
    const olderName = `${df.suffix}/${hash}/${T(NOW + 1).internal}.data`;
    const older = dataFile({ 'X-Timestamp': T(NOW + 1).internal, 'Content-Length': '7', ETag: md5Hex(dataBody) });
    expect(await dst.mgr.receiveTar('sda', 0, 0, Readable.from([await tarOf([{ name: olderName, content: older }])]), { partPower: 7 })).toEqual({ received: 1, skipped: 0 });
    expect(await readFile(join(dst.devices, 'sda', 'objects', '0', olderName))).toEqual(older);
  });

  it('missingFiles refuses malformed offers', async () => {
    await expect(dst.mgr.missingFiles('sda', 0, 0, ['abc/../../etc'])).rejects.toThrow('offered file "abc/../../etc": not <suffix>/<hash>/<file>');
  });
});

describe('removePushed', () => {
  it('deletes only pushed files, keeps later writes, and removes the partition once empty', async () => {
    for (let i = 0; i < 5; i++) await src.mgr.diskFile('sda', 9, 0, 'a', 'c', `o${i}`).write(T(NOW - 10), {}, bodyOf('x'), {});
    const suffixes = Object.keys(await src.mgr.getHashes('sda', 9, 0));
    const pushed: string[] = [];
    for await (const { suffix, hash, files } of src.mgr.listSuffixFiles('sda', 9, 0, suffixes)) {
      for (const f of files) pushed.push(`${suffix}/${hash}/${f}`);
    }
    // Written after the push began: a new version of o0 and a new object.
    await src.mgr.diskFile('sda', 9, 0, 'a', 'c', 'o0').writeMeta(T(NOW), { 'X-Object-Meta-Late': '1' });
    await src.mgr.diskFile('sda', 9, 0, 'a', 'c', 'late').write(T(NOW), {}, bodyOf('late'), {});
    expect(await src.mgr.removePushed('sda', 9, 0, pushed)).toEqual({ removed: 5, kept: 2 });
    const late = await src.mgr.diskFile('sda', 9, 0, 'a', 'c', 'late').open();
    expect(late.kind).toBe('object');
    expect(await src.mgr.listPartitions('sda', 0)).toEqual([9]);
    const rest: string[] = [];
    for await (const { suffix, hash, files } of src.mgr.listSuffixFiles('sda', 9, 0, Object.keys(await src.mgr.getHashes('sda', 9, 0)))) {
      for (const f of files) rest.push(`${suffix}/${hash}/${f}`);
    }
    // The late .meta of o0 travels too (its .data left with the push).
    expect(rest.length).toBe(2);
    // A crash's leftover temporary of a `hashes` write does not keep the folder.
    await writeFile(join(src.devices, 'sda', 'objects', '9', '.hashes.4194305.0a1b2c3d4e5f.tmp'), '{"version":1');
    expect(await src.mgr.removePushed('sda', 9, 0, rest)).toEqual({ removed: 2, kept: 0 });
    expect(await src.mgr.listPartitions('sda', 0)).toEqual([]);
    expect(await src.mgr.getHashes('sda', 9, 0)).toEqual({});
  });
});
