/**
 * The replication endpoints of a real swiftlet-object-server: REPLICATE (POST /_replicate),
 * the `missing` negotiation and the tar sync receiver, with well-formed and hostile tar streams.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { Ring, RingData } from '@swiftlet/ring';
import { listFiles, put, removeDir, request, startObjectServer, type TestServer } from './helpers.js';

let srv: TestServer;
let port: number;
const PART_POWER = 4;

beforeAll(async () => {
  srv = await startObjectServer({ devices: ['sda', 'sdb'] });
  port = srv.port;
});
afterAll(async () => {
  await srv?.stop();
  if (srv) await removeDir(srv.dir);
});

async function writeRing(): Promise<Ring> {
  const rows = [new Uint16Array(2 ** PART_POWER)];
  const dev = { id: 0, region: 1, zone: 1, ip: '127.0.0.1', port, replicationIp: '127.0.0.1', replicationPort: port, device: 'sda', weight: 1, meta: '' };
  await new RingData({ devs: [dev], replica2part2devId: rows, partShift: 32 - PART_POWER }).save(join(srv.swiftDir, 'object.ring.gz'));
  return Ring.forKind(srv.swiftDir, 'object', 0);
}

type Entry = { name: string; body?: Buffer; type?: 'file' | 'symlink' | 'directory'; linkname?: string };
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const e of entries) {
    if (e.type === 'symlink') p.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '/etc/passwd' });
    else if (e.type === 'directory') p.entry({ name: e.name, type: 'directory' });
    else p.entry({ name: e.name }, e.body ?? Buffer.alloc(0));
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

const allFiles = async (): Promise<string[]> => listFiles(srv.dir);

describe('replication endpoints', () => {
  let ring: Ring;
  let part: number;
  let sdaFiles: string[];

  it('_sync answers 503 naming the ring when the object ring is missing', async () => {
    const r = await request(port, 'PUT', '/_sync/sdb/1', { 'Content-Type': 'application/x-tar' }, await tarOf([]));
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/object ring .*object\.ring\.gz not found/);
    const m = await request(port, 'POST', '/_sync/sdb/1/missing', { 'Content-Type': 'application/json' }, JSON.stringify({ offered: [] }));
    expect(m.status).toBe(503);
  });

  it('REPLICATE: {} for a missing partition (not created), suffix hashes after a PUT', async () => {
    ring = await writeRing();
    part = ring.getPart('a', 'c', 'o1');
    const md5s = JSON.parse((await request(port, 'GET', '/recon/ringmd5')).text) as Record<string, string>;
    expect(md5s).toEqual({ [join(srv.swiftDir, 'object.ring.gz')]: ring.md5 });
    const empty = await request(port, 'POST', `/_replicate/sda/${part}`);
    expect(empty.status).toBe(200);
    expect(JSON.parse(empty.text)).toEqual({});
    expect(await readdir(join(srv.devices, 'sda'))).not.toContain('objects');
    expect((await put(port, `/sda/${part}/a/c/o1`, 'replicate me')).status).toBe(201);
    const hashes = JSON.parse((await request(port, 'POST', `/_replicate/sda/${part}`)).text) as Record<string, string>;
    const suffixes = Object.keys(hashes);
    expect(suffixes).toHaveLength(1);
    expect(hashes[suffixes[0] as string]).toMatch(/^[0-9a-f]{32}$/);
    const again = JSON.parse((await request(port, 'POST', `/_replicate/sda/${part}/${suffixes[0]}`)).text) as Record<string, string>;
    expect(again).toEqual(hashes);
    expect((await request(port, 'POST', `/_replicate/sda/${part}/zzz`)).status).toBe(400);
    expect((await request(port, 'POST', `/_replicate/sda/notapart`)).status).toBe(400);
  });

  it('batched REPLICATE: many partitions in one request, the same hashes as one by one; bad bodies are 400', async () => {
    const single = JSON.parse((await request(port, 'POST', `/_replicate/sda/${part}`)).text) as Record<string, string>;
    const other = (part + 1) % 2 ** PART_POWER;
    const json = { 'Content-Type': 'application/json' };
    const r = await request(port, 'POST', '/_replicate/sda', json, JSON.stringify({ partitions: [part, other] }));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ [String(part)]: single, [String(other)]: {} });
    for (const bad of ['not json', '{}', '{"partitions": [-1]}', '{"partitions": [1.5]}', '{"partitions": ["1"]}', JSON.stringify({ partitions: Array(4097).fill(1) })]) {
      const b = await request(port, 'POST', '/_replicate/sda', json, bad);
      expect(b.status, bad.slice(0, 40)).toBe(400);
      expect(b.text).toMatch(/^(Invalid JSON body|Body must be \{"partitions")/);
    }
    expect((await request(port, 'POST', '/_replicate/nodev', json, JSON.stringify({ partitions: [part] }))).status).toBe(507);
    // With our digests (MD5 of "<suffix>:<hash>\n" in suffix order), a partition held identically
    // is only listed as the same; one that differs comes with its hashes.
    const digestOf = (h: Record<string, string>): string =>
      createHash('md5').update(Object.keys(h).sort().map((k) => `${k}:${h[k]}\n`).join('')).digest('hex');
    const withDigests = async (digests: Record<string, string>): Promise<unknown> => {
      const d = await request(port, 'POST', '/_replicate/sda', json, JSON.stringify({ partitions: [part, other], digests }));
      expect(d.status, d.text).toBe(200);
      return JSON.parse(d.text);
    };
    expect(Object.keys(single).length).toBeGreaterThan(0);
    expect(await withDigests({ [String(part)]: digestOf(single), [String(other)]: digestOf({}) })).toEqual({ same: [part, other], hashes: {} });
    expect(await withDigests({ [String(part)]: digestOf({}) })).toEqual({ same: [], hashes: { [String(part)]: single, [String(other)]: {} } });
    for (const bad of ['{"partitions": [1], "digests": [1]}', '{"partitions": [1], "digests": {"1": 5}}', '{"partitions": [1], "digests": null}']) {
      const b = await request(port, 'POST', '/_replicate/sda', json, bad);
      expect(b.status, bad).toBe(400);
      expect(b.text).toBe('"digests" must be {"<partition>": "<digest>", ...}\n');
    }
    // Asking created nothing: the empty partition is still absent.
    expect(await readdir(join(srv.devices, 'sda', 'objects'))).not.toContain(String(other));
  });

  it('missing + tar receiver: the files offered land on the other device and read back', async () => {
    sdaFiles = (await listFiles(join(srv.devices, 'sda', 'objects', String(part)))).filter((f) => /^[0-9a-f]{3}\//.test(f));
    expect(sdaFiles).toHaveLength(1);
    const m = await request(port, 'POST', `/_sync/sdb/${part}/missing`, { 'Content-Type': 'application/json' }, JSON.stringify({ offered: sdaFiles }));
    expect(m.status).toBe(200);
    expect(JSON.parse(m.text)).toEqual({ wanted: sdaFiles });
    const body = await readFile(join(srv.devices, 'sda', 'objects', String(part), sdaFiles[0] as string));
    const r = await request(port, 'PUT', `/_sync/sdb/${part}`, { 'Content-Type': 'application/x-tar' }, await tarOf([{ name: sdaFiles[0] as string, body }]));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ received: 1, skipped: 0 });
    expect((await request(port, 'GET', `/sdb/${part}/a/c/o1`)).text).toBe('replicate me');
    const m2 = await request(port, 'POST', `/_sync/sdb/${part}/missing`, {}, JSON.stringify({ offered: sdaFiles }));
    expect(JSON.parse(m2.text)).toEqual({ wanted: [] });
    expect((await request(port, 'POST', `/_sync/sdb/${part}/missing`, {}, 'not json')).status).toBe(400);
  });

  it('a push with X-Recalculate-Suffixes answers with the rehashed suffixes; a bad list is 400 with nothing written', async () => {
    const file = sdaFiles[0] as string;
    const suffix = file.slice(0, 3);
    const body = await readFile(join(srv.devices, 'sda', 'objects', String(part), file));
    const before = await allFiles();
    const bad = await request(port, 'PUT', `/_sync/sdb/${part}`, { 'Content-Type': 'application/x-tar', 'X-Recalculate-Suffixes': 'zzz' }, await tarOf([{ name: file, body }]));
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/Invalid suffix/);
    expect(await allFiles()).toEqual(before);
    // Into a third device's worth of state: remove sdb's copy first so the push has work to do.
    await removeDir(join(srv.devices, 'sdb', 'objects', String(part)));
    const r = await request(port, 'PUT', `/_sync/sdb/${part}`, { 'Content-Type': 'application/x-tar', 'X-Recalculate-Suffixes': suffix }, await tarOf([{ name: file, body }]));
    expect(r.status).toBe(200);
    const answer = JSON.parse(r.text) as { received: number; hashes: Record<string, string> };
    expect(answer.received).toBe(1);
    // What a REPLICATE answers now, and what the device that sent it holds.
    const sdbHashes = JSON.parse((await request(port, 'POST', `/_replicate/sdb/${part}`)).text) as Record<string, string>;
    const sdaHashes = JSON.parse((await request(port, 'POST', `/_replicate/sda/${part}`)).text) as Record<string, string>;
    expect(answer.hashes[suffix]).toBe(sdbHashes[suffix]);
    expect(answer.hashes[suffix]).toBe(sdaHashes[suffix]);
  });

  it('hostile tar streams -> 400 with a one-line reason, nothing written anywhere', async () => {
    const before = await allFiles();
    const good = await readFile(join(srv.devices, 'sda', 'objects', String(part), sdaFiles[0] as string));
    const [suffix, hash] = (sdaFiles[0] as string).split('/') as [string, string];
    const otherPart = (part + 1) % 2 ** PART_POWER;
    const hostile: [string, Entry[]][] = [
      ['path traversal', [{ name: `../../../escape.data`, body: good }]],
      ['absolute path', [{ name: `/tmp/escape-${Date.now()}.data`, body: good }]],
      ['dotdot inside', [{ name: `${suffix}/../${hash}/1.data`, body: good }]],
      ['symlink', [{ name: `${suffix}/${hash}/1700000000.00000.data`, type: 'symlink' }]],
      ['not a swift file name', [{ name: `${suffix}/${hash}/evil.sh`, body: Buffer.from('#!/bin/sh') }]],
      ['corrupt file (no trailer)', [{ name: `${suffix}/${hash}/1700000000.00000.data`, body: Buffer.from('garbage') }]],
      ['good entry followed by a hostile one', [{ name: sdaFiles[0] as string, body: good }, { name: '../x', body: good }]],
    ];
    for (const [what, entries] of hostile) {
      const r = await request(port, 'PUT', `/_sync/sdb/${otherPart}`, { 'Content-Type': 'application/x-tar' }, await tarOf(entries));
      expect(r.status, what).toBe(400);
      expect(r.text.trim().split('\n'), what).toHaveLength(1);
    }
    // A hash that does not belong to the partition.
    const r = await request(port, 'PUT', `/_sync/sdb/${otherPart}`, {}, await tarOf([{ name: sdaFiles[0] as string, body: good }]));
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/does not belong to partition/);
    // Truncated stream.
    const whole = await tarOf([{ name: sdaFiles[0] as string, body: good }]);
    const t = await request(port, 'PUT', `/_sync/sdb/${part}`, {}, whole.subarray(0, 700));
    expect(t.status).toBe(400);
    const after = (await allFiles()).filter((f) => !f.endsWith('.log') && !/hashes(\.invalid)?$/.test(f));
    expect(after).toEqual(before.filter((f) => !f.endsWith('.log') && !/hashes(\.invalid)?$/.test(f)));
  });
});
