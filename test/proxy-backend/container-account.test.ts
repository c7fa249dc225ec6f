/**
 * Containers and accounts through the proxy backend, with real object, container and account
 * servers: account autocreate, container existence checks before object requests, listings kept
 * by the object servers' container updates, and quorum answers of container writes.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyBackend } from '@swiftlet/proxy';
import { startObjectTier, type ObjectTier } from './object-nodes.js';

const A = 'AUTH_acct';

async function drain(s: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (s) for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('containers and accounts through the proxy backend', () => {
  let tier: ObjectTier;
  let b: ProxyBackend;

  beforeAll(async () => {
    tier = await startObjectTier({ withDb: true });
    b = tier.backend();
  });
  afterAll(async () => {
    await tier?.stop();
  });

  it('an object PUT into a missing container is 404 and writes nothing', async () => {
    const body = randomBytes(10);
    const res = await b.putObject(A, 'nope', 'o', Readable.from([body]), { 'content-length': '10' });
    expect(res.status).toBe(404);
    expect((await b.headContainer(A, 'nope')).status).toBe(404);
  });

  it('creates the account on the first container PUT; objects show up in listings; non-empty delete is 409', async () => {
    const put = await b.putContainer(A, 'photos');
    expect(put.status).toBe(201);
    expect((await b.headAccount(A)).status).toBe(204);
    const head = await b.headContainer(A, 'photos');
    expect(head.status).toBe(204);
    expect(head.headers['x-backend-storage-policy-index']).toBe('0');
    for (const name of ['2024/a.jpg', '2024/b.jpg', '2025/c.jpg', 'top.txt']) {
      const body = randomBytes(100);
      const r = await b.putObject(A, 'photos', name, Readable.from([body]), { 'content-length': '100', 'content-type': 'image/jpeg' });
      expect(r.status).toBe(201);
    }
    const all = await b.listContainer(A, 'photos', {});
    expect(all.status).toBe(200);
    expect(all.rows.map((r) => ('name' in r ? r.name : r.subdir))).toEqual(['2024/a.jpg', '2024/b.jpg', '2025/c.jpg', 'top.txt']);
    const first = all.rows[0] as { bytes: number; content_type: string; hash: string };
    expect(first.bytes).toBe(100);
    expect(first.content_type).toBe('image/jpeg');
    const rolled = await b.listContainer(A, 'photos', { delimiter: '/' });
    expect(rolled.rows).toEqual([{ subdir: '2024/' }, { subdir: '2025/' }, expect.objectContaining({ name: 'top.txt' })]);
    const page = await b.listContainer(A, 'photos', { prefix: '2024/', marker: '2024/a.jpg', limit: 5 });
    expect(page.rows.map((r) => ('name' in r ? r.name : ''))).toEqual(['2024/b.jpg']);
    expect((await b.deleteContainer(A, 'photos')).status).toBe(409);
    for (const name of ['2024/a.jpg', '2024/b.jpg', '2025/c.jpg', 'top.txt']) {
      expect((await b.deleteObject(A, 'photos', name)).status).toBe(204);
    }
    expect((await b.listContainer(A, 'photos', {})).rows).toEqual([]);
    expect((await b.deleteContainer(A, 'photos')).status).toBe(204);
    expect((await b.headContainer(A, 'photos')).status).toBe(404);
    const after = await b.getObject(A, 'photos', 'top.txt', {});
    expect(after.status).toBe(404);
    await drain(after.body);
  });

  it('container metadata via POST; account listing answers', async () => {
    expect((await b.putContainer(A, 'meta')).status).toBe(201);
    expect((await b.postContainer(A, 'meta', { 'x-container-meta-color': 'red' })).status).toBe(204);
    expect((await b.headContainer(A, 'meta')).headers['x-container-meta-color']).toBe('red');
    const list = await b.listAccount(A, {});
    expect([200, 204]).toContain(list.status);
  });
});
