/**
 * Consistent reads (`consistent_reads`, on by default): an object GET or HEAD serves the newest
 * version a read quorum of primaries holds, so a primary that missed a DELETE or an overwrite
 * while it was down never answers with its old copy. Swift's first-answer behaviour (the option
 * off) is shown to serve the stale copy in the same situation, so the scenario is real.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Timestamp } from '@swiftlet/common';
import type { ProxyBackend } from '@swiftlet/proxy';
import type { RingDevice } from '@swiftlet/ring';
import { startObjectTier, type ObjectTier } from './object-nodes.js';

const A = 'AUTH_test';
const C = 'bucket';
/** Timestamps a few seconds apart, recent (tombstones older than reclaim_age would be reclaimed at once). */
const T0 = Math.floor(Date.now() / 1000) - 60;
const at = (offsetS: number): Timestamp => Timestamp.fromSeconds(T0 + offsetS);

async function collect(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A backend request straight to one object server, as a write that reached only some primaries. */
async function direct(node: RingDevice, part: number, name: string, method: 'PUT' | 'DELETE', ts: Timestamp, body?: Buffer): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${node.port}/${node.device}/${part}/${A}/${C}/${encodeURIComponent(name)}`, {
    method,
    headers: { 'X-Timestamp': ts.internal, ...(body ? { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) } : {}) },
    ...(body ? { body } : {}),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('consistent reads against real object servers', () => {
  let tier: ObjectTier;
  let consistent: ProxyBackend;
  let firstAnswer: ProxyBackend;

  beforeAll(async () => {
    tier = await startObjectTier();
    consistent = tier.backend();
    firstAnswer = tier.backend({ consistentReads: false });
  });
  afterAll(async () => {
    await tier?.stop();
  });

  function placement(name: string): { part: number; nodes: RingDevice[] } {
    const { part, nodes } = tier.ring.getNodes(A, C, name);
    return { part, nodes: nodes as RingDevice[] };
  }

  const nodesOf = (name: string): RingDevice[] => placement(name).nodes;

  /** Requests answered by these object servers, by method (their Prometheus counters). */
  async function requestCounts(nodes: RingDevice[]): Promise<Record<string, number>> {
    const counts: Record<string, number> = { GET: 0, HEAD: 0 };
    for (const n of nodes) {
      const text = await (await fetch(`http://127.0.0.1:${n.port}/metrics`)).text();
      for (const m of text.matchAll(/^swiftlet_object_server_requests_total\{method="(\w+)",[^}]*\} (\d+)/gm)) {
        counts[m[1]!] = (counts[m[1]!] ?? 0) + Number(m[2]);
      }
    }
    return counts;
  }

  async function putEverywhere(name: string, body: Buffer, ts: Timestamp): Promise<void> {
    const { part, nodes } = placement(name);
    for (const n of nodes) expect(await direct(n, part, name, 'PUT', ts, body)).toBe(201);
  }

  it('a primary that missed the DELETE: every GET and HEAD answers 404 (the first answer alone serves the old object)', async () => {
    const name = 'missed-delete';
    const { part, nodes } = placement(name);
    await putEverywhere(name, randomBytes(5000), at(0));
    const deleted = at(100);
    for (const n of nodes.slice(1)) expect(await direct(n, part, name, 'DELETE', deleted)).toBe(204);

    const seen: number[] = [];
    for (let i = 0; i < 15; i++) {
      const got = await consistent.getObject(A, C, name, {});
      await collect(got.body);
      seen.push(got.status, (await consistent.headObject(A, C, name)).status);
    }
    expect(seen.every((s) => s === 404), seen.join(',')).toBe(true);
    expect(consistent.stats().staleReadsAvoided).toBeGreaterThan(0);

    // Without the probe, the shuffled order asks the stale primary first about a third of the time.
    const firstSeen: number[] = [];
    for (let i = 0; i < 30; i++) {
      const got = await firstAnswer.getObject(A, C, name, {});
      await collect(got.body);
      firstSeen.push(got.status);
    }
    expect(firstSeen).toContain(200);
    expect(firstSeen).toContain(404);
  });

  it('a primary that missed an overwrite: GET, ranged GET and HEAD give the new version', async () => {
    const name = 'missed-overwrite';
    const { part, nodes } = placement(name);
    const v1 = randomBytes(4000);
    const v2 = randomBytes(6000);
    await putEverywhere(name, v1, at(0));
    const newer = at(200);
    for (const n of nodes.slice(1)) expect(await direct(n, part, name, 'PUT', newer, v2)).toBe(201);

    for (let i = 0; i < 12; i++) {
      const got = await consistent.getObject(A, C, name, {});
      expect(got.status).toBe(200);
      expect((await collect(got.body)).equals(v2)).toBe(true);
      const ranged = await consistent.getObject(A, C, name, { range: 'bytes=100-199' });
      expect(ranged.status).toBe(206);
      expect((await collect(ranged.body)).equals(v2.subarray(100, 200))).toBe(true);
      const head = await consistent.headObject(A, C, name);
      expect(head.headers['content-length']).toBe(String(v2.length));
      expect(head.headers['x-backend-timestamp']).toBe(newer.internal);
    }
  });

  it('one primary stale and one down: the remaining one makes the quorum and its tombstone wins', async () => {
    const name = 'stale-and-down';
    const { part, nodes } = placement(name);
    await putEverywhere(name, randomBytes(3000), at(0));
    expect(await direct(nodes[1]!, part, name, 'DELETE', at(300))).toBe(204);
    await tier.servers[nodes[2]!.id]!.stop();
    try {
      for (let i = 0; i < 10; i++) {
        const got = await consistent.getObject(A, C, name, {});
        await collect(got.body);
        expect(got.status).toBe(404);
        expect((await consistent.headObject(A, C, name)).status).toBe(404);
      }
    } finally {
      await tier.restart(nodes[2]!.id);
    }
  });

  it('If-Match: * on a primary that missed the PUT: the object other primaries hold is served, not its 412', async () => {
    const name = 'missed-put';
    const { part, nodes } = placement(name);
    const body = randomBytes(3000);
    for (const n of nodes.slice(1)) expect(await direct(n, part, name, 'PUT', at(0), body)).toBe(201);
    for (let i = 0; i < 12; i++) {
      const got = await consistent.getObject(A, C, name, { 'if-match': '*' });
      expect(got.status).toBe(200);
      expect((await collect(got.body)).equals(body)).toBe(true);
    }
  });

  it('two primaries hung (SIGSTOP): the third one\'s body is served whole after the probes time out, not cut by its own node timeout', async () => {
    const name = 'two-hung';
    const { nodes } = placement(name);
    const body = randomBytes(4 * 1024 * 1024);
    await putEverywhere(name, body, at(0));
    // A node timeout shorter than the probes take to give up (two hung probes, one after the other).
    const b = tier.backend({ nodeTimeoutS: 0.5, connTimeoutS: 0.2, errorSuppressionLimit: 1000 });
    const hung = nodes.slice(1).map((n) => tier.servers[n.id]!);
    for (const h of hung) h.pause();
    try {
      for (let i = 0; i < 3; i++) {
        const got = await b.getObject(A, C, name, {});
        expect(got.status).toBe(200);
        const read = collect(got.body);
        const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('body never ended')), 15_000));
        expect((await Promise.race([read, timeout])).equals(body)).toBe(true);
      }
    } finally {
      for (const h of hung) h.resume();
    }
  });

  it('replicas in agreement: conditional and plain reads answer as before, nothing counted as stale', async () => {
    const name = 'agreed';
    const body = randomBytes(2000);
    const b = tier.backend();
    await putEverywhere(name, body, at(0));
    const got = await b.getObject(A, C, name, {});
    expect(got.status).toBe(200);
    expect((await collect(got.body)).equals(body)).toBe(true);
    const etag = got.headers['etag']!;
    const notModified = await b.getObject(A, C, name, { 'if-none-match': `"${etag}"` });
    await collect(notModified.body);
    expect(notModified.status).toBe(304);
    const failed = await b.getObject(A, C, name, { 'if-match': '"0123"' });
    await collect(failed.body);
    expect(failed.status).toBe(412);
    expect(b.stats().staleReadsAvoided).toBe(0);

    // The cost: one HEAD per read, to a node other than the one serving the body.
    const before = await requestCounts(nodesOf(name));
    for (let i = 0; i < 10; i++) await collect((await b.getObject(A, C, name, {})).body);
    const after = await requestCounts(nodesOf(name));
    // Less the GET /metrics that read `before` (each is counted once answered).
    expect(after.GET - before.GET - nodesOf(name).length).toBe(10);
    expect(after.HEAD - before.HEAD).toBe(10);
  });
});
