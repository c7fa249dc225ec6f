/**
 * The proxy data path against five real object servers: quorum PUTs with handoffs, reads that
 * fall back and resume, and the failure answers (503, 202, 412, 422, 499).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SwiftConf, Timestamp } from '@swiftlet/common';
import type { ProxyBackend } from '@swiftlet/proxy';
import { startObjectTier, type ObjectTier } from './object-nodes.js';

const A = 'AUTH_test';
const C = 'bucket';

function source(buf: Buffer, chunk = 64 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts);
}

async function collect(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function put(b: ProxyBackend, name: string, body: Buffer, headers: Record<string, string> = {}) {
  return b.putObject(A, C, name, source(body), { 'content-length': String(body.length), 'content-type': 'application/octet-stream', ...headers });
}

/** `.data` files of object `name` on device `dev`. */
async function dataFiles(tier: ObjectTier, dev: number, name: string): Promise<string[]> {
  const part = tier.ring.getNodes(A, C, name).part;
  const hash = SwiftConf.load(tier.swiftDir).hashPath(A, C, name).hex;
  const dir = join(tier.deviceDir(dev), 'objects', String(part));
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.filter((e) => e.endsWith('.data') && e.includes(hash)).map((e) => join(dir, e));
}

describe('proxy backend with real object servers', () => {
  let tier: ObjectTier;
  let backend: ProxyBackend;

  beforeAll(async () => {
    tier = await startObjectTier();
    backend = tier.backend();
  });
  afterAll(async () => {
    await tier?.stop();
  });

  it('PUT reaches all three primaries with one X-Timestamp; GET, HEAD, Range and DELETE', async () => {
    const body = randomBytes(300 * 1024 + 7);
    const res = await put(backend, 'a/b c.bin', body, { 'x-object-meta-color': 'blue' });
    expect(res.status).toBe(201);
    expect(res.headers['etag']).toBe(md5(body));
    const ts = res.headers['x-backend-timestamp'] as string;
    const { part, nodes } = tier.ring.getNodes(A, C, 'a/b c.bin');
    for (const n of nodes) {
      const files = await dataFiles(tier, n.id, 'a/b c.bin');
      expect(files.map((f) => f.split('/').pop())).toEqual([`${ts}.data`]);
    }
    const got = await backend.getObject(A, C, 'a/b c.bin', {});
    expect(got.status).toBe(200);
    expect(got.headers['x-object-meta-color']).toBe('blue');
    expect(md5(await collect(got.body))).toBe(md5(body));
    const head = await backend.headObject(A, C, 'a/b c.bin');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(body.length));
    expect(head.headers['etag']).toBe(md5(body));
    const ranged = await backend.getObject(A, C, 'a/b c.bin', { range: 'bytes=10-19' });
    expect(ranged.status).toBe(206);
    expect((await collect(ranged.body)).equals(body.subarray(10, 20))).toBe(true);
    const del = await backend.deleteObject(A, C, 'a/b c.bin');
    expect(del.status).toBe(204);
    const gone = await backend.getObject(A, C, 'a/b c.bin', {});
    expect(gone.status).toBe(404);
    await collect(gone.body);
  });

  it('zero-byte objects, POST metadata (202) and conditional GETs', async () => {
    const empty = await put(backend, 'empty', Buffer.alloc(0));
    expect(empty.status).toBe(201);
    expect(empty.headers['etag']).toBe(md5(Buffer.alloc(0)));
    const got = await backend.getObject(A, C, 'empty', {});
    expect(got.status).toBe(200);
    expect((await collect(got.body)).length).toBe(0);
    const post = await backend.postObject(A, C, 'empty', { 'x-object-meta-k': 'v', 'content-type': 'text/plain' });
    expect(post.status).toBe(202);
    expect((await backend.headObject(A, C, 'empty')).headers['x-object-meta-k']).toBe('v');
    expect((await backend.postObject(A, C, 'never-written', { 'x-object-meta-k': 'v' })).status).toBe(404);
    const etag = md5(Buffer.alloc(0));
    const notModified = await backend.getObject(A, C, 'empty', { 'if-none-match': `"${etag}"` });
    expect(notModified.status).toBe(304);
    await collect(notModified.body);
    const failed = await backend.getObject(A, C, 'empty', { 'if-match': '"0123"' });
    expect(failed.status).toBe(412);
    await collect(failed.body);
  });

  it('answers 422 on an ETag mismatch, 412 for If-None-Match on an existing object, 202 for an older timestamp, 499 for a short body', async () => {
    const body = randomBytes(1000);
    expect((await put(backend, 'cond', body, { etag: md5(Buffer.from('other')) })).status).toBe(422);
    expect((await backend.headObject(A, C, 'cond')).status).toBe(404);
    const first = await put(backend, 'cond', body);
    expect(first.status).toBe(201);
    expect((await put(backend, 'cond', body, { 'if-none-match': '*' })).status).toBe(412);
    const older = Timestamp.fromSeconds(Timestamp.parse(first.headers['x-backend-timestamp'] as string).seconds - 10);
    expect((await put(backend, 'cond', randomBytes(10), { 'x-timestamp': older.internal })).status).toBe(202);
    const short = await backend.putObject(A, C, 'short', source(randomBytes(500)), { 'content-length': '1000', 'content-type': 'x/y' });
    expect(short.status).toBe(499);
    expect((await backend.headObject(A, C, 'short')).status).toBe(404);
    const got = await backend.getObject(A, C, 'cond', {});
    expect((await collect(got.body)).equals(body)).toBe(true);
    // The same answers from the streaming path (bodies above the small-PUT size).
    const big = randomBytes(100 * 1024);
    expect((await put(backend, 'cond', big, { 'if-none-match': '*' })).status).toBe(412);
    expect((await put(backend, 'cond', big, { 'x-timestamp': older.internal })).status).toBe(202);
    expect((await put(backend, 'cond-big', big, { etag: md5(body) })).status).toBe(422);
    const shortBig = await backend.putObject(A, C, 'short-big', source(randomBytes(100_000)), { 'content-length': '200000', 'content-type': 'x/y' });
    expect(shortBig.status).toBe(499);
    expect((await backend.headObject(A, C, 'short-big')).status).toBe(404);
    expect((await backend.headObject(A, C, 'cond-big')).status).toBe(404);
  });

  it('a primary answering 507 (device missing) is replaced by a handoff and limited at once', async () => {
    const name = 'full-disk';
    const { part, nodes } = tier.ring.getNodes(A, C, name);
    const victim = nodes[1]!;
    const handoff = tier.ring.getMoreNodes(part).next().value!;
    const dir = tier.deviceDir(victim.id);
    await rename(dir, `${dir}.away`);
    try {
      const b = tier.backend();
      const body = randomBytes(70 * 1024);
      const res = await put(b, name, body);
      expect(res.status).toBe(201);
      expect(b.stats().errorLimitedNodes).toEqual([`127.0.0.1:${victim.port}/${victim.device}`]);
      expect(b.stats().handoffWrites).toBe(1);
      expect(await dataFiles(tier, handoff.id, name)).toHaveLength(1);
      const got = await b.getObject(A, C, name, {});
      expect((await collect(got.body)).equals(body)).toBe(true);
    } finally {
      await rename(`${dir}.away`, dir);
    }
  });

  it('with one server stopped every acknowledged PUT is readable byte for byte, the third copy on a handoff', async () => {
    const down = 2;
    await tier.servers[down]!.stop();
    try {
      const b = tier.backend();
      const bodies = new Map<string, Buffer>();
      for (let i = 0; i < 12; i++) {
        const body = randomBytes(1 + i * 5000);
        const res = await put(b, `one-down-${i}`, body);
        expect(res.status).toBe(201);
        bodies.set(`one-down-${i}`, body);
      }
      let handoffCopies = 0;
      for (const [name, body] of bodies) {
        const got = await b.getObject(A, C, name, {});
        expect(got.status).toBe(200);
        expect((await collect(got.body)).equals(body)).toBe(true);
        const { part, nodes } = tier.ring.getNodes(A, C, name);
        if (nodes.some((n) => n.id === down)) {
          const first = [...tier.ring.getMoreNodes(part)][0]!;
          expect(await dataFiles(tier, first.id, name)).toHaveLength(1);
          handoffCopies++;
        }
      }
      expect(handoffCopies).toBeGreaterThan(0);
      expect(b.stats().handoffWrites).toBe(handoffCopies);
    } finally {
      await tier.restart(down);
    }
  });

  it('handoff data older than the primaries\' tombstones is never served (stale read)', async () => {
    const name = 'stale';
    const { part, nodes } = tier.ring.getNodes(A, C, name);
    const [h0] = [...tier.ring.getMoreNodes(part)];
    const b = tier.backend();
    // A primary is down: the PUT leaves a copy on the first handoff.
    await tier.servers[nodes[1]!.id]!.stop();
    try {
      expect((await put(b, name, randomBytes(3000))).status).toBe(201);
      expect(await dataFiles(tier, h0!.id, name)).toHaveLength(1);
    } finally {
      await tier.restart(nodes[1]!.id);
    }
    // The handoff is unreachable during the DELETE: all three primaries get tombstones, it keeps the data.
    await tier.servers[h0!.id]!.stop();
    const fresh = tier.backend();
    try {
      expect((await fresh.deleteObject(A, C, name)).status).toBe(204);
    } finally {
      await tier.restart(h0!.id);
    }
    expect(await dataFiles(tier, h0!.id, name)).toHaveLength(1);
    const reader = tier.backend();
    for (let i = 0; i < 3; i++) {
      const got = await reader.getObject(A, C, name, {});
      expect(got.status).toBe(404);
      expect(got.headers['x-backend-timestamp']).toBeDefined();
      await collect(got.body);
    }
    expect((await reader.headObject(A, C, name)).status).toBe(404);
  });

  it('a hung node (SIGSTOP) delays PUT and GET by at most the node timeout', async () => {
    const name = 'hang';
    const { nodes } = tier.ring.getNodes(A, C, name);
    const hung = tier.servers[nodes[0]!.id]!;
    const b = tier.backend({ nodeTimeoutS: 1, connTimeoutS: 0.5, sortingMethod: 'timing' });
    const body = randomBytes(200 * 1024);
    hung.pause();
    try {
      let t0 = Date.now();
      const res = await put(b, name, body);
      expect(res.status).toBe(201);
      expect(Date.now() - t0).toBeLessThan(4000);
      t0 = Date.now();
      for (let i = 0; i < 3; i++) {
        const got = await b.getObject(A, C, name, {});
        expect((await collect(got.body)).equals(body)).toBe(true);
      }
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(b.stats().backendTimeouts).toBeGreaterThan(0);
    } finally {
      hung.resume();
    }
  });

  it('a streamed body of unknown length: every replica stores it with the MD5 the proxy computed', async () => {
    // Over 64 KiB, so it streams with the checksum trailer; no Content-Length, so the replicas
    // learn its length only from its end.
    const name = 'no-length';
    const body = randomBytes(1024 * 1024 + 12345);
    const res = await backend.putObject(A, C, name, source(body, 50_000), { 'content-type': 'application/octet-stream' });
    expect(res.status).toBe(201);
    expect(res.headers['etag']).toBe(md5(body));
    const { nodes } = tier.ring.getNodes(A, C, name);
    for (const n of nodes) {
      const [file] = await dataFiles(tier, n.id, name);
      const stored = await readFile(file!);
      expect(md5(stored.subarray(0, body.length))).toBe(md5(body));
      expect(stored.subarray(body.length).toString('utf8')).toContain(`"ETag":"${md5(body)}"`);
    }
    expect(md5(await collect((await backend.getObject(A, C, name, {})).body))).toBe(md5(body));
  });

  it('a slow client is not a slow node: no node timeout while the body waits for its reader', async () => {
    const name = 'slow-reader';
    const body = randomBytes(4 * 1024 * 1024);
    expect((await put(backend, name, body)).status).toBe(201);
    const b = tier.backend({ nodeTimeoutS: 1 });
    const got = await b.getObject(A, C, name, {});
    expect(got.status).toBe(200);
    await new Promise((r) => setTimeout(r, 2500));
    expect(md5(await collect(got.body))).toBe(md5(body));
    expect(b.stats().backendErrors).toBe(0);
    expect(b.stats().readResumes).toBe(0);
  });

  it('a client slow to send is not a slow node: the PUT waits for its body', async () => {
    const body = randomBytes(256 * 1024);
    async function* slowly(): AsyncGenerator<Buffer> {
      yield body.subarray(0, 100_000);
      await new Promise((r) => setTimeout(r, 2500));
      yield body.subarray(100_000);
    }
    const b = tier.backend({ nodeTimeoutS: 1 });
    const res = await b.putObject(A, C, 'slow-writer', Readable.from(slowly()), { 'content-length': String(body.length) });
    expect(res.status).toBe(201);
    expect(b.stats().backendErrors).toBe(0);
    expect(md5(await collect((await b.getObject(A, C, 'slow-writer', {})).body))).toBe(md5(body));
  });

  it('a corrupted replica does not yield a wrong body: the read resumes from another replica', async () => {
    const name = 'rotten';
    // Larger than the object server's read chunk (512 KiB), so that the rot is found mid-body,
    // after the first bytes went out, and the read must resume rather than start over.
    const body = randomBytes(2 * 1024 * 1024 + 300 * 1024);
    expect((await put(backend, name, body)).status).toBe(201);
    const { part, nodes } = tier.ring.getNodes(A, C, name);
    // Two of three replicas rot in their last bytes (which the object server withholds until the
    // MD5 is checked): whichever serves first, the read completes from a good one.
    for (const n of nodes.slice(0, 2)) {
      const [file] = await dataFiles(tier, n.id, name);
      const data = await readFile(file!);
      data[body.length - 5] = data[body.length - 5]! ^ 0xff;
      await writeFile(file!, data);
    }
    const b = tier.backend();
    for (let i = 0; i < 10; i++) {
      const got = await b.getObject(A, C, name, {});
      expect(got.status).toBe(200);
      expect(md5(await collect(got.body))).toBe(md5(body));
    }
    expect(b.stats().readResumes).toBeGreaterThan(0);
  });

  it('all replicas corrupted: the body stream fails instead of ending short or wrong', async () => {
    const name = 'all-rotten';
    const body = randomBytes(1024 * 1024);
    expect((await put(backend, name, body)).status).toBe(201);
    const { part, nodes } = tier.ring.getNodes(A, C, name);
    for (const n of nodes) {
      const [file] = await dataFiles(tier, n.id, name);
      const data = await readFile(file!);
      data[5000] = data[5000]! ^ 0xff;
      await writeFile(file!, data);
    }
    const got = await backend.getObject(A, C, name, {});
    expect(got.status).toBe(200);
    await expect(collect(got.body)).rejects.toThrow(/no replica could continue/);
  });

  it('no quorum: two of three primaries stopped (no handoffs allowed) -> 503, never success', async () => {
    const name = 'no-quorum';
    const { nodes } = tier.ring.getNodes(A, C, name);
    const stopped = [nodes[0]!.id, nodes[2]!.id];
    await Promise.all(stopped.map((i) => tier.servers[i]!.stop()));
    try {
      const b = tier.backend({ requestNodeCount: 3 });
      // Streaming size: fewer connections than a quorum, so no byte is sent and nothing stored.
      const res = await put(b, name, randomBytes(100 * 1024));
      expect(res.status).toBe(503);
      expect(b.stats().quorumFailures).toBeGreaterThan(0);
      const got = await b.getObject(A, C, name, {});
      expect(got.status).not.toBe(200);
      await collect(got.body);
      // A small body goes out with its headers: still 503 (the lone copy is not a success).
      expect((await put(b, `${name}-small`, randomBytes(5000))).status).toBe(503);
    } finally {
      await Promise.all(stopped.map((i) => tier.restart(i)));
    }
  });
});
