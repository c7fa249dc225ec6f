/**
 * The object replicator against four real object servers (one device each) and a 3-replica ring:
 * repair, refill, tombstones, handoff revert, a hung peer, a ring change mid-pass, and the sync
 * receiver refusing hostile or truncated pushes. The replicator runs as a process with --once.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { waitFor } from '@swiftlet/cluster';
import { nextTs, ObjectCluster, PART_POWER, summaryOf, type Node } from './object-cluster.js';

let cluster: ObjectCluster;

beforeAll(async () => {
  cluster = await ObjectCluster.start();
});

afterAll(async () => {
  await cluster?.stop();
});

const node = (i: number): Node => cluster.nodes[i - 1] as Node;

async function putEverywhere(nodes: Node[], object: string, body: string | Buffer, ts: string): Promise<void> {
  for (const n of nodes) expect(await cluster.put(n, object, body, ts)).toBe(201);
}

async function replicateAll(args: string[] = []): Promise<void> {
  for (const n of cluster.nodes) {
    const run = await cluster.replicate(n, args);
    expect(run.code, run.log.slice(-2000)).toBe(0);
  }
}

describe('object replicator', () => {
  it('repairs a divergent object (newer copy on one primary reaches the others)', async () => {
    const part = 1;
    const name = cluster.nameIn(part, 'divergent');
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    await putEverywhere([p1, p2, p3], name, 'old body', nextTs());
    const newTs = nextTs();
    expect(await cluster.put(p2, name, 'new body', newTs)).toBe(201);

    const run = await cluster.replicate(p2, ['--partitions', String(part)]);
    expect(run.code, run.log.slice(-2000)).toBe(0);
    const s = summaryOf(run)['stats'] as Record<string, number>;
    expect(s['attempted']).toBe(1);
    expect(s['rsync']).toBe(2);
    expect(s['suffix_sync']).toBe(2);
    for (const n of [p1, p2, p3]) {
      const got = await cluster.get(n, name);
      expect(got.status).toBe(200);
      expect(got.body).toBe('new body');
      expect(got.timestamp).toBe(newTs);
    }
    // A second pass finds everything in sync: nothing moves.
    const again = summaryOf(await cluster.replicate(p2, ['--partitions', String(part)]))['stats'] as Record<string, number>;
    expect(again['hashmatch']).toBe(2);
    expect(again['rsync']).toBe(0);
    // The peers' answers came in batched REPLICATE requests (POST /_replicate/<device>), each a
    // digest match: no suffix hashes were sent or compared.
    expect(again['remote_hashes_batched']).toBe(2);
    expect(again['digest_match']).toBe(2);
    expect(again['suffix_count'] ?? 0).toBe(0);
  });

  it('asks a peer to recalculate its suffixes only after pushing to it, in the push itself', async () => {
    const part = 2;
    const name = cluster.nameIn(part, 'stale-sender');
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    await putEverywhere([p1, p2, p3], name, 'old body', nextTs());
    const newTs = nextTs();
    await putEverywhere([p2, p3], name, 'new body', newTs);
    // Recalculating REPLICATEs the node's server answered for this partition (its request log).
    const recalcs = async (n: Node): Promise<number> => {
      const log = await readFile(join(cluster.dir, `object-server-${n.index}.log`), 'utf8');
      return log.split('\n').filter((l) => l.includes(`"path":"/_replicate/${n.device}/${part}/`)).length;
    };
    const before = await Promise.all([p2, p3].map(recalcs));
    // p1 holds the older copy: its peers want none of its files, so it pushes nothing and asks
    // them for no rehash.
    const stale = await cluster.replicate(p1, ['--partitions', String(part)]);
    expect(stale.code, stale.log.slice(-2000)).toBe(0);
    const s = summaryOf(stale)['stats'] as Record<string, number>;
    expect([s['rsync'], s['files_sent'] ?? 0]).toEqual([2, 0]);
    // Its peers hold the suffix (differently): each sync asked what they lack first.
    expect(s['missing_check_skipped'] ?? 0).toBe(0);
    expect(await Promise.all([p2, p3].map(recalcs))).toEqual(before);
    // p2 pushes the newer copy to p1, which rehashes within the push: no separate REPLICATE.
    const p1Before = await recalcs(p1);
    const fresh = await cluster.replicate(p2, ['--partitions', String(part)]);
    expect(fresh.code, fresh.log.slice(-2000)).toBe(0);
    expect((summaryOf(fresh)['stats'] as Record<string, number>)['files_sent']).toBe(1);
    expect(await recalcs(p1)).toBe(p1Before);
    expect((await cluster.get(p1, name)).body).toBe('new body');
    // And p1's hashes now say so: the next pass finds the partition in sync.
    const again = summaryOf(await cluster.replicate(p2, ['--partitions', String(part)]))['stats'] as Record<string, number>;
    expect(again['rsync'] ?? 0).toBe(0);
  });

  it('an in-sync pass over many partitions: every job a digest match, nothing pushed, the counts add up', async () => {
    const src = node(1);
    for (let part = 0; part < 1 << PART_POWER; part++) {
      const nodes = cluster.primariesOf(part);
      if (!nodes.includes(src)) continue;
      await putEverywhere(nodes, cluster.nameIn(part, 'insync'), `in sync ${part}`, nextTs());
    }
    await replicateAll(); // settles every hash cache
    const run = await cluster.replicate(src);
    expect(run.code, run.log.slice(-2000)).toBe(0);
    const s = summaryOf(run)['stats'] as Record<string, number>;
    // Most of these jobs end from answers fetched ahead, without being run (alreadyInSync); they
    // must count exactly as a job that ran and found its peers in sync.
    expect(s['attempted']).toBeGreaterThanOrEqual(8);
    expect(s['hashmatch']).toBe(2 * s['attempted']!);
    expect(s['success']).toBe(2 * s['attempted']!);
    expect(s['digest_match']).toBe(2 * s['attempted']!);
    expect(s['remote_hashes_batched']).toBe(2 * s['attempted']!);
    expect(s['rsync']).toBe(0);
    expect(s['failure']).toBe(0);
  });

  it('refills a wiped device, never pushes temp files, and writes recon', async () => {
    const wiped = node(2);
    const names: string[] = [];
    for (let i = 0; i < 24; i++) {
      const name = `refill-${i}`;
      const part = cluster.partitionOf('a', 'c', name);
      await putEverywhere(cluster.primariesOf(part), name, `body of ${name}`, nextTs());
      names.push(name);
    }
    // A temp file beside a real one on a healthy primary must stay where it is.
    const mine = names.filter((n) => cluster.primariesOf(cluster.partitionOf('a', 'c', n)).includes(wiped));
    expect(mine.length).toBeGreaterThan(3);
    const sample = mine[0] as string;
    const samplePart = cluster.partitionOf('a', 'c', sample);
    const source = cluster.primariesOf(samplePart).find((n) => n !== wiped) as Node;
    const hash = cluster.hashOf('a', 'c', sample);
    const hashDir = join(cluster.partitionDir(source, samplePart), hash.slice(-3), hash);
    await writeFile(join(hashDir, '.1700000000.00000.data.Ab12Cd'), 'partial');
    await writeFile(join(hashDir, `.1700000000.00000.data.${process.pid}.abcdef.tmp`), 'partial');

    await rm(join(wiped.devicesDir, wiped.device, 'objects'), { recursive: true, force: true });
    for (const n of cluster.nodes.filter((x) => x !== wiped)) {
      const run = await cluster.replicate(n);
      expect(run.code, run.log.slice(-2000)).toBe(0);
      // Every peer answer came in a batch fetched ahead; before a missing check (rsync), the peer
      // is asked again, since another primary may have refilled it since.
      const s = summaryOf(run)['stats'] as Record<string, number>;
      expect(s['remote_hashes_refreshed'] ?? 0).toBe(s['rsync'] ?? 0);
      // The wiped device holds none of the suffixes: every file is wanted, so no sync asked.
      expect(s['missing_check_skipped'] ?? 0).toBe(s['rsync'] ?? 0);
    }
    for (const name of mine) {
      const got = await cluster.get(wiped, name);
      expect(got.status, name).toBe(200);
      expect(got.body).toBe(`body of ${name}`);
    }
    const peerFiles = await cluster.filesOf(wiped, samplePart);
    expect(peerFiles.some((f) => f.includes('/.'))).toBe(false);
    // Every push was followed by a rehash request: the refilled partitions' journals are empty.
    const { readFile: read } = await import('node:fs/promises');
    for (const part of new Set(mine.map((n) => cluster.partitionOf('a', 'c', n)))) {
      const journal = await read(join(cluster.partitionDir(wiped, part), 'hashes.invalid'), 'utf8').catch(() => '');
      expect(journal, `partition ${part}`).toBe('');
    }

    const recon = await cluster.recon(source);
    const stats = recon['replication_stats'] as Record<string, unknown>;
    expect(stats['attempted']).toBeGreaterThan(0);
    expect(stats['rsync']).toBeGreaterThan(0);
    expect(stats['failure']).toBe(0);
    expect(typeof recon['replication_last']).toBe('number');
    expect(typeof recon['replication_time']).toBe('number');
  });

  it('brings a tombstone to the primary that missed the DELETE; the object does not come back', async () => {
    const part = 5;
    const name = cluster.nameIn(part, 'tomb');
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    await putEverywhere([p1, p2, p3], name, 'doomed', nextTs());
    const delTs = nextTs();
    expect(await cluster.del(p1, name, delTs)).toBe(204);
    expect(await cluster.del(p2, name, delTs)).toBe(204);
    // The node that missed the DELETE replicates first: its old .data must not win.
    const first = await cluster.replicate(p3, ['--partitions', String(part)]);
    expect(first.code).toBe(0);
    for (const n of [p1, p2]) expect((await cluster.get(n, name)).status).toBe(404);
    await cluster.replicate(p1, ['--partitions', String(part)]);
    for (const n of [p1, p2, p3]) {
      const got = await cluster.get(n, name);
      expect(got.status).toBe(404);
      expect(got.timestamp).toBe(delTs);
    }
    await replicateAll(['--partitions', String(part)]);
    for (const n of [p1, p2, p3]) expect((await cluster.get(n, name)).status).toBe(404);
  });

  it('reverts writes made to a handoff while a primary was down, then removes the handoff partition', async () => {
    const part = 6;
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    const handoff = cluster.handoffOf(part);
    const names = [cluster.nameIn(part, 'ho-a'), cluster.nameIn(part, 'ho-b')];
    await p3.server?.stop();
    try {
      for (const name of names) await putEverywhere([p1, p2, handoff], name, `handoff ${name}`, nextTs());
      // With the primary down, the handoff keeps its partition.
      const blocked = await cluster.replicate(handoff, ['--partitions', String(part)]);
      expect(blocked.code).toBe(0);
      expect((summaryOf(blocked)['stats'] as Record<string, number>)['failure']).toBeGreaterThan(0);
      expect((await cluster.filesOf(handoff, part)).length).toBe(2);
    } finally {
      await cluster.startServer(p3);
    }
    const run = await cluster.replicate(handoff, ['--partitions', String(part)]);
    expect(run.code, run.log.slice(-2000)).toBe(0);
    expect((summaryOf(run)['stats'] as Record<string, number>)['remove']).toBe(1);
    for (const name of names) {
      const got = await cluster.get(p3, name);
      expect(got.status).toBe(200);
      expect(got.body).toBe(`handoff ${name}`);
    }
    await waitFor(async () => (await cluster.filesOf(handoff, part)).length === 0, { what: 'handoff files removed' });
    const { existsSync } = await import('node:fs');
    expect(existsSync(cluster.partitionDir(handoff, part))).toBe(false);
  });

  it('never removes a file written into the handoff partition after its push began', async () => {
    const part = 11;
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    const handoff = cluster.handoffOf(part);
    const early = cluster.nameIn(part, 'early');
    await putEverywhere([handoff], early, 'e'.repeat(120_000), nextTs());
    const confFile = join(cluster.dir, 'slow-handoff.conf');
    const { readFile } = await import('node:fs/promises');
    await writeFile(
      confFile,
      (await readFile(handoff.conf, 'utf8')).replace('[object-replicator]\n', '[object-replicator]\nmax_bytes_per_second = 150000\n'),
    );
    const running = cluster.replicate(handoff, ['--partitions', String(part)], { confOverride: confFile, timeoutMs: 30_000 });
    // Pushing 120 kB to three primaries at 150 kB/s takes ~2.4 s: once the first primary has the
    // early object, the partition was listed and the other pushes are under way: write now.
    await waitFor(
      async () => {
        for (const n of [p1, p2, p3]) if ((await cluster.get(n, early)).status === 200) return true;
        return false;
      },
      { what: 'first push done', intervalMs: 20 },
    );
    const late = cluster.nameIn(part, 'late');
    expect(await cluster.put(handoff, late, 'written during the revert', nextTs())).toBe(201);
    const run = await running;
    expect(run.code, run.log.slice(-2000)).toBe(0);
    for (const n of [p1, p2, p3]) expect((await cluster.get(n, early)).status).toBe(200);
    // The late object survives on the handoff (pushed next pass), the early one is gone from it.
    expect((await cluster.get(handoff, late)).body).toBe('written during the revert');
    expect((await cluster.get(handoff, early)).status).toBe(404);
    const next = await cluster.replicate(handoff, ['--partitions', String(part)]);
    expect((summaryOf(next)['stats'] as Record<string, number>)['remove']).toBe(1);
    for (const n of [p1, p2, p3]) expect((await cluster.get(n, late)).body).toBe('written during the revert');
  });

  it('a primary answering 507 is replaced by the next handoff', async () => {
    const part = 12;
    const name = cluster.nameIn(part, 'full');
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    const handoff = cluster.handoffOf(part);
    await putEverywhere([p1, p2], name, 'needs three copies', nextTs());
    const { rename } = await import('node:fs/promises');
    const devDir = join(p3.devicesDir, p3.device);
    await rename(devDir, `${devDir}.gone`);
    try {
      const run = await cluster.replicate(p1, ['--partitions', String(part)]);
      expect(run.code).toBe(0);
      const s = summaryOf(run)['stats'] as Record<string, unknown>;
      expect(s['failure_nodes']).toEqual({ '127.0.0.1': { [p3.device]: 1 } });
      expect(s['success']).toBe(2); // p2 (in sync) and the handoff (pushed)
    } finally {
      await rename(`${devDir}.gone`, devDir);
    }
    expect((await cluster.get(handoff, name)).body).toBe('needs three copies');
  });

  it('handoff_delete = 2 removes a handoff partition once two primaries hold it', async () => {
    const part = 13;
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    const handoff = cluster.handoffOf(part);
    const name = cluster.nameIn(part, 'hd');
    await putEverywhere([handoff], name, 'two copies suffice', nextTs());
    const confFile = join(cluster.dir, 'handoff-delete.conf');
    const { readFile } = await import('node:fs/promises');
    await writeFile(confFile, (await readFile(handoff.conf, 'utf8')).replace('[object-replicator]\n', '[object-replicator]\nhandoff_delete = 2\n'));
    await p3.server?.stop();
    try {
      const run = await cluster.replicate(handoff, ['--partitions', String(part)], { confOverride: confFile });
      expect(run.code, run.log.slice(-2000)).toBe(0);
      const s = summaryOf(run)['stats'] as Record<string, unknown>;
      expect(s['remove']).toBe(1);
      expect(s['success']).toBe(2);
      expect(s['failure_nodes']).toEqual({ '127.0.0.1': { [p3.device]: 1 } });
    } finally {
      await cluster.startServer(p3);
    }
    for (const n of [p1, p2]) expect((await cluster.get(n, name)).body).toBe('two copies suffice');
    expect((await cluster.filesOf(handoff, part)).length).toBe(0);
  });

  it('removes an empty handoff partition without contacting peers', async () => {
    const part = 7;
    const handoff = cluster.handoffOf(part);
    await mkdir(cluster.partitionDir(handoff, part), { recursive: true });
    const primaries = cluster.primariesOf(part);
    for (const p of primaries) p.server?.pause();
    try {
      const run = await cluster.replicate(handoff, ['--partitions', String(part)]);
      expect(run.code).toBe(0);
      const s = summaryOf(run)['stats'] as Record<string, number>;
      expect(s['remove']).toBe(1);
      expect(s['failure']).toBe(0);
    } finally {
      for (const p of primaries) p.server?.resume();
    }
    const { existsSync } = await import('node:fs');
    expect(existsSync(cluster.partitionDir(handoff, part))).toBe(false);
  });

  it('a hung peer does not hold the pass past its timeouts', async () => {
    const part = 9;
    const name = cluster.nameIn(part, 'hang');
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    await putEverywhere([p1, p2], name, 'while p3 hangs', nextTs());
    p3.server?.pause();
    try {
      const run = await cluster.replicate(p1, ['--partitions', String(part)], { timeoutMs: 40_000 });
      expect(run.code).toBe(0);
      // http_timeout is 5 s in this cluster's config; the pass must not wait much beyond it.
      expect(run.durationMs).toBeLessThan(15_000);
      const s = summaryOf(run)['stats'] as Record<string, unknown>;
      expect(s['failure']).toBe(1);
      expect(s['failure_nodes']).toEqual({ '127.0.0.1': { [p3.device]: 1 } });
      expect(s['success']).toBe(1);
    } finally {
      p3.server?.resume();
    }
  });

  it('a ring change during a pass ends it; the next pass uses the new ring', async () => {
    const slow = node(4);
    const names: string[] = [];
    for (let i = 0; i < 16; i++) {
      const name = cluster.nameIn(i, 'ring');
      // Incompressible, so that the bandwidth limit below holds the pass for seconds (the push is
      // gzipped: a body of one repeated byte went through in a few ms and the pass could end
      // before the ring check ran).
      await putEverywhere(cluster.primariesOf(i).filter((n) => n !== slow), name, randomBytes(20_000), nextTs());
      names.push(name);
    }
    const source = node(1);
    const confFile = join(cluster.dir, 'slow-replicator.conf');
    const { readFile } = await import('node:fs/promises');
    const conf = (await readFile(source.conf, 'utf8')).replace(
      '[object-replicator]\n',
      '[object-replicator]\nmax_bytes_per_second = 40000\nring_check_interval = 0.2\n',
    );
    await writeFile(confFile, conf);
    const started = cluster.replicate(source, [], { confOverride: confFile, timeoutMs: 60_000 });
    // Once the first push has landed, publish a new ring (same layout, different bytes).
    await waitFor(
      async () => {
        for (const name of names) if ((await cluster.get(slow, name)).status === 200) return true;
        return false;
      },
      { what: 'first push to the slow node', intervalMs: 50, timeoutMs: 20_000 },
    );
    await cluster.writeRing({ meta: 'changed' });
    const run = await started;
    expect(run.code).toBe(0);
    const summary = summaryOf(run);
    expect(summary['aborted']).toBe('ring-changed');
    expect(Number(summary['done'])).toBeLessThan(Number(summary['jobs']));
    const next = await cluster.replicate(source);
    expect(summaryOf(next)['aborted']).toBeUndefined();
  });

  it('the receiver refuses hostile and truncated pushes and leaves the partition unchanged', async () => {
    const part = 10;
    const target = cluster.primariesOf(part)[0] as Node;
    const name = cluster.nameIn(part, 'hostile');
    await putEverywhere(cluster.primariesOf(part), name, 'keep me', nextTs());
    const before = await cluster.filesOf(target, part);
    const hash = cluster.hashOf('a', 'c', name);
    const good = `${hash.slice(-3)}/${hash}/${nextTs()}.data`;

    const tarOf = async (entries: { name: string; body: Buffer }[]): Promise<Buffer> => {
      const pack = tar.pack();
      for (const e of entries) pack.entry({ name: e.name, size: e.body.length }, e.body);
      pack.finalize();
      const chunks: Buffer[] = [];
      for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
      return Buffer.concat(chunks);
    };
    const push = (body: Buffer): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: target.port, method: 'PUT', path: `/_sync/${target.device}/${part}`, headers: { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });

    const hostile = [
      await tarOf([{ name: `../../../escape/${hash}/1.data`, body: Buffer.from('x') }]),
      await tarOf([{ name: `${hash.slice(-3)}/${hash}/../../../../etc.data`, body: Buffer.from('x') }]),
      await tarOf([{ name: `${hash.slice(-3)}/${hash}/not-a-timestamp.data`, body: Buffer.from('x') }]),
      await tarOf([{ name: `abc/${hash}/${nextTs()}.data`, body: Buffer.from('x') }]),
    ];
    for (const body of hostile) {
      const res = await push(body);
      expect(res.status, res.text).toBe(400);
    }
    const encoded = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const body = hostile[0] as Buffer;
      const req = request(
        { host: '127.0.0.1', port: target.port, method: 'PUT', path: `/_sync/${target.device}/${part}`, headers: { 'Content-Type': 'application/x-tar', 'Content-Encoding': 'br', 'Content-Length': body.length } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(encoded.status).toBe(400);
    expect(encoded.text).toMatch(/unsupported Content-Encoding "br"/);
    const whole = await tarOf([{ name: good, body: Buffer.alloc(4096, 1) }]);
    const truncated = whole.subarray(0, 512 + 1000);
    const res = await push(truncated).catch((err: Error) => ({ status: 0, text: err.message }));
    expect(res.status).not.toBe(200);
    expect(await cluster.filesOf(target, part)).toEqual(before);
    const got = await cluster.get(target, name);
    expect(got.body).toBe('keep me');
  });

  it('runs passes forever, one per interval, and stops cleanly on SIGTERM', async () => {
    const n = node(3);
    await rm(join(n.reconDir, 'object.recon'), { force: true });
    const { proc, logFile } = await cluster.startReplicator(n);
    try {
      // interval = 1 in this cluster: two passes end within a few seconds.
      await waitFor(
        async () => {
          const { readFile } = await import('node:fs/promises');
          const log = await readFile(logFile, 'utf8').catch(() => '');
          return log.split('\n').filter((l) => l.includes('"pass":"end"')).length >= 2;
        },
        { what: 'two replication passes', timeoutMs: 20_000, intervalMs: 100 },
      );
      expect((await cluster.recon(n))['replication_stats']).toBeDefined();
    } finally {
      const t0 = Date.now();
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      expect(Date.now() - t0).toBeLessThan(5000);
    }
  });

  it('does not pull suffixes that only a peer has', async () => {
    const part = 14;
    const [p1, p2, p3] = cluster.primariesOf(part) as [Node, Node, Node];
    const shared = cluster.nameIn(part, 'shared');
    await putEverywhere([p1, p2, p3], shared, 'everywhere', nextTs());
    let name = cluster.nameIn(part, 'remote-only');
    for (let i = 0; cluster.hashOf('a', 'c', name).slice(-3) === cluster.hashOf('a', 'c', shared).slice(-3); i++) {
      name = cluster.nameIn(part, `remote-only-${i}`);
    }
    expect(await cluster.put(p2, name, 'only on p2', nextTs())).toBe(201);
    const run = await cluster.replicate(p1, ['--partitions', String(part)]);
    expect(run.code).toBe(0);
    // p1 compares only the suffixes it has: both peers match them; nothing pushed, nothing pulled.
    const s = summaryOf(run)['stats'] as Record<string, number>;
    expect(s['hashmatch']).toBe(2);
    expect(s['rsync']).toBe(0);
    expect((await cluster.get(p1, name)).status).toBe(404);
    expect((await cluster.get(p3, name)).status).toBe(404);
    // p2's own pass pushes it.
    await cluster.replicate(p2, ['--partitions', String(part)]);
    for (const n of [p1, p3]) expect((await cluster.get(n, name)).body).toBe('only on p2');
  });

  it('removes stray files where partition folders belong and old temp files', async () => {
    const n = node(4);
    const objectsDir = join(n.devicesDir, n.device, 'objects');
    await mkdir(objectsDir, { recursive: true });
    await writeFile(join(objectsDir, '9999'), 'not a partition');
    const tmpDir = join(n.devicesDir, n.device, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const { utimes, readdir: ls } = await import('node:fs/promises');
    const old = join(tmpDir, '.old-upload.1.abcdef.tmp');
    const fresh = join(tmpDir, '.fresh-upload.1.abcdef.tmp');
    await writeFile(old, 'x');
    await writeFile(fresh, 'x');
    const eightDaysAgo = Date.now() / 1000 - 8 * 86400;
    await utimes(old, eightDaysAgo, eightDaysAgo);
    const run = await cluster.replicate(n, ['--partitions', '9999']);
    expect(run.code, run.log.slice(-2000)).toBe(0);
    expect(run.log).toMatch(/removing stray file/);
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(objectsDir, '9999'))).toBe(false);
    const left = await ls(tmpDir);
    expect(left).not.toContain('.old-upload.1.abcdef.tmp');
    expect(left).toContain('.fresh-upload.1.abcdef.tmp');
  });

  it('refuses bad arguments with a usage message', async () => {
    const run = await cluster.replicate(node(1), ['--partitions', 'x,1']);
    expect(run.code).toBe(2);
    expect(run.log).toMatch(/--partitions must be a comma-separated list of integers/);
  });
});
