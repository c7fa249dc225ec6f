/**
 * Replication of the container (or account) databases, run inside the server process (LevelDB
 * admits one process per database), as a strategy of the shared pass engine of
 * `@swiftlet/replicator` (jobs, concurrency, lockup detection, ring-change abort, stats).
 *
 * A job is one partition of one local device: every container (account) of that partition is
 * compared with the same container on each other primary, cheaply:
 *   1. `POST /_db_replicate/<dev>/<part>/<account>[/<container>]?op=sync` with the owner info
 *      (timestamps, metadata, row hash, max row seq). The peer merges the info (creating the
 *      container if it had none) and answers its database id and row hash.
 *   2. Equal hashes: in sync. Otherwise the rows changed after the peer's sync point (the highest
 *      local seq that peer acknowledged, kept per peer database id in `p\0` keys) are read from
 *      the change log (`q\0` keys) and sent as NDJSON to `...?op=rows`, `per_diff` rows per
 *      request and at most `max_diffs` requests per pass; each acknowledged request advances the
 *      sync point. Tombstone rows travel like live rows, so deletions propagate.
 * A handoff partition is pushed to every primary the same way and, once all accepted everything
 * and nothing changed meanwhile, removed locally. The pass also reclaims tombstone rows and
 * deleted containers older than `reclaim_age`.
 */
import type Koa from 'koa';
import {
  BadRequestError,
  NotFoundError,
  Timestamp,
  backendPath,
  backendRequest,
  readBody,
  type Logger,
} from '@swiftlet/common';
import {
  ReplicationEngine,
  isLocalDevice,
  localAddresses,
  type CollectContext,
  type JobContext,
  type PassSummary,
  type ReplicationJob,
  type ReplicationStrategy,
} from '@swiftlet/replicator';
import { Ring, type RingNode } from '@swiftlet/ring';
import type { DbServerConfig } from './config.js';
import { dirtyKey, ownerKey, parseOwnerKey } from './db/keys.js';
import { newOwnerInfo, type OwnerInfo, type RowDb } from './db/row-db.js';
import type { AnyRow, RowModel } from './db/row-model.js';
import type { AppState } from './http/app-base.js';
import type { DeviceDbs } from './http/devices.js';
import { parseBackendPath } from './http/request-path.js';

export const DB_STAT_NAMES = ['attempted', 'success', 'failure', 'no_change', 'hashmatch', 'diff', 'diff_capped', 'remote_merge', 'remove', 'reclaimed'] as const;

interface DbJob extends ReplicationJob {
  readonly owners: string[];
  readonly nodes: RingNode[];
}

/** What a peer needs of the owner info to merge it (ids, counts and hashes are per replica). */
interface SharedInfo {
  createdAt: string;
  putTs: string;
  deleteTs: string;
  statusChangedAt: string;
  policyIndex: number;
  meta: Record<string, [string, string]>;
}

interface SyncRequest {
  id: string;
  hash: string;
  maxSeq: number;
  info: SharedInfo;
}

interface SyncResponse {
  id: string;
  hash: string;
  maxSeq: number;
  created: boolean;
}

const maxTs = (a: string, b: string): string => (Timestamp.parse(a).compare(Timestamp.parse(b)) >= 0 ? a : b);
const isOwnerDeleted = (info: OwnerInfo): boolean => info.rows === 0 && Timestamp.parse(info.deleteTs).compare(Timestamp.parse(info.putTs)) > 0;

export class DbReplicator<R extends AnyRow> implements ReplicationStrategy<DbJob> {
  readonly kind: 'container' | 'account';
  readonly statNames = DB_STAT_NAMES;
  private readonly engine: ReplicationEngine<DbJob>;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private ring: Ring | undefined;
  private ringMd5: string | undefined;
  /** Called after rows or info were merged into an owner (the container server then updates the account). */
  onMerged: ((db: RowDb<R>, owner: string) => void) | undefined;

  constructor(
    readonly conf: DbServerConfig,
    readonly dbs: DeviceDbs<R>,
    readonly model: RowModel<R>,
    readonly logger: Logger,
  ) {
    this.kind = conf.kind;
    this.engine = new ReplicationEngine(this, {
      concurrency: conf.replicator.concurrency,
      handoffsFirst: false,
      intervalS: conf.replicator.intervalS,
      lockupTimeoutS: Math.max(60, conf.replicator.nodeTimeoutS * 10),
      statsIntervalS: 300,
      ringCheckIntervalS: 15,
      ...(conf.replicator.reconCachePath !== undefined ? { reconCachePath: conf.replicator.reconCachePath } : {}),
      logger,
    });
  }

  start(): void {
    if (this.conf.replicator.intervalS <= 0) return;
    this.running = this.engine.runForever(this.abort.signal);
  }

  stop(): void {
    this.abort.abort();
  }

  async idle(): Promise<void> {
    await this.running;
  }

  /** One pass now (the `POST /_db_replicate` trigger and the tests). */
  runPass(): Promise<PassSummary> {
    return this.engine.runPass({}, this.abort.signal);
  }

  private loadRing(): Ring {
    const ring = Ring.forKind(this.conf.swiftDir, this.kind, 0, { reloadTimeS: 1e9 });
    this.ring = ring;
    this.ringMd5 = ring.md5;
    return ring;
  }

  // ---- the strategy ----

  async collectJobs(ctx: CollectContext): Promise<DbJob[]> {
    const ring = this.loadRing();
    const addresses = localAddresses(this.conf.bindIp);
    const jobs: DbJob[] = [];
    for (const dev of ring.devices) {
      if (dev === null || !isLocalDevice(addresses, this.conf.bindPort, dev)) continue;
      if (ctx.overrides.devices?.length && !ctx.overrides.devices.includes(dev.device)) continue;
      let db: RowDb<R>;
      try {
        db = await this.dbs.get(dev.device);
      } catch {
        ctx.logger.warn({ device: dev.device }, 'device unusable; skipped this pass');
        continue;
      }
      const byPart = new Map<string, string[]>();
      for await (const { owner, id } of db.owners()) {
        const list = byPart.get(id.part);
        if (list === undefined) byPart.set(id.part, [owner]);
        else list.push(owner);
      }
      for (const [partStr, owners] of byPart) {
        const partition = Number(partStr);
        if (!Number.isInteger(partition) || partition < 0 || partition >= ring.partCount) {
          ctx.logger.warn({ device: dev.device, partition: partStr }, 'partition not in the ring; skipped');
          continue;
        }
        if (ctx.overrides.partitions?.length && !ctx.overrides.partitions.includes(partition)) continue;
        const nodes = ring.getPartNodes(partition);
        const handoff = !nodes.some((n) => n.id === dev.id);
        jobs.push({ device: dev.device, partition, handoff, owners, nodes: nodes.filter((n) => n.id !== dev.id) });
      }
    }
    return jobs;
  }

  async ringChanged(): Promise<boolean> {
    if (this.ring === undefined) return false;
    try {
      const now = Ring.forKind(this.conf.swiftDir, this.kind, 0, { reloadTimeS: 1e9 });
      return now.md5 !== this.ringMd5;
    } catch {
      return false;
    }
  }

  async replicatePrimary(job: DbJob, ctx: JobContext): Promise<void> {
    const db = await this.dbs.get(job.device);
    for (const owner of job.owners) {
      const info = await this.reclaim(db, owner, ctx);
      if (info === undefined) continue;
      for (const node of job.nodes) {
        ctx.stats.inc('attempted');
        try {
          await this.syncOwner(db, owner, info, node, ctx);
          ctx.stats.inc('success');
        } catch (err) {
          ctx.stats.failure(node.replicationIp, node.device);
          ctx.logger.warn({ peer: `${node.replicationIp}:${node.replicationPort}/${node.device}`, owner: owner.split('\0').join('/'), err: (err as Error).message }, 'database sync failed');
        }
        ctx.progress();
      }
    }
  }

  async revertHandoff(job: DbJob, ctx: JobContext): Promise<boolean> {
    const db = await this.dbs.get(job.device);
    let allRemoved = true;
    for (const owner of job.owners) {
      const info = await db.readInfo(owner);
      if (info === undefined) continue;
      let ok = true;
      for (const node of job.nodes) {
        ctx.stats.inc('attempted');
        try {
          const complete = await this.syncOwner(db, owner, info, node, ctx);
          if (!complete) ok = false;
          ctx.stats.inc('success');
        } catch (err) {
          ok = false;
          ctx.stats.failure(node.replicationIp, node.device);
          ctx.logger.warn({ peer: `${node.replicationIp}:${node.replicationPort}/${node.device}`, err: (err as Error).message }, 'handoff push failed');
        }
        ctx.progress();
      }
      // An account update this copy still owes is owed by the primaries too: merging marked them.
      if (ok && (await db.removeOwner(owner, { maxSeq: info.maxSeq }))) {
        ctx.stats.inc('remove');
        ctx.logger.info({ owner: owner.split('\0').join('/') }, 'handoff database pushed to every primary and removed');
      } else {
        allRemoved = false;
      }
    }
    return allRemoved;
  }

  /** Removes old tombstone rows, and the whole owner once deleted for longer than reclaim_age. */
  private async reclaim(db: RowDb<R>, owner: string, ctx: JobContext): Promise<OwnerInfo | undefined> {
    const cutoff = Timestamp.fromSeconds(Date.now() / 1000 - this.conf.reclaimAgeS);
    const older = (ts: string): boolean => Timestamp.parse(ts).compare(cutoff) < 0;
    const n = await db.reclaimRows(owner, (row) => older('ts' in row ? row.ts : maxTs(row.putTs, row.deleteTs)));
    if (n > 0) ctx.stats.inc('reclaimed', n);
    const info = await db.readInfo(owner);
    if (info === undefined) return undefined;
    if (isOwnerDeleted(info) && older(info.deleteTs) && (await db.dev.db.get(dirtyKey(owner))) === undefined) {
      if (await db.removeOwner(owner, { maxSeq: info.maxSeq })) {
        ctx.stats.inc('reclaimed');
        return undefined;
      }
    }
    return info;
  }

  /** Brings one peer up to date with one owner; true when the peer has every local row. */
  private async syncOwner(db: RowDb<R>, owner: string, info: OwnerInfo, node: RingNode, ctx: JobContext): Promise<boolean> {
    const id = parseOwnerKey(owner);
    const path = backendPath('_db_replicate', node.device, id.part, id.account, ...(id.container === undefined ? [] : [id.container]));
    const body: SyncRequest = {
      id: info.id,
      hash: info.hash,
      maxSeq: info.maxSeq,
      info: { createdAt: info.createdAt, putTs: info.putTs, deleteTs: info.deleteTs, statusChangedAt: info.statusChangedAt, policyIndex: info.policyIndex, meta: info.meta },
    };
    const remote = JSON.parse(await this.call(node, `${path}?op=sync`, JSON.stringify(body), ctx)) as SyncResponse;
    if (remote.created) ctx.stats.inc('remote_merge');
    if (remote.hash === info.hash) {
      ctx.stats.inc('hashmatch');
      await db.setSyncPoint(owner, remote.id, info.maxSeq);
      return true;
    }
    let point = await db.getSyncPoint(owner, remote.id);
    if (point >= info.maxSeq) {
      // The peer has every local row; it holds rows we lack, which its own pass sends here.
      ctx.stats.inc('no_change');
      return true;
    }
    ctx.stats.inc('diff');
    for (let batch = 0; batch < this.conf.replicator.maxDiffs; batch++) {
      const rows = await db.rowsSince(owner, point, this.conf.replicator.perDiff);
      if (rows.length === 0) return true;
      const ndjson = rows.map((r) => JSON.stringify([r.name, r.row.deleted ? 1 : 0, this.model.encode(r.row)])).join('\n');
      await this.call(node, `${path}?op=rows`, ndjson, ctx);
      point = Math.max(...rows.map((r) => r.row.seq));
      await db.setSyncPoint(owner, remote.id, point);
      ctx.progress();
    }
    ctx.stats.inc('diff_capped');
    return false;
  }

  private async call(node: RingNode, path: string, body: string, ctx: JobContext): Promise<string> {
    const res = await backendRequest(
      { ip: node.replicationIp, port: node.replicationPort },
      {
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': `${this.kind}-replicator ${process.pid}` },
        body,
        connTimeoutMs: this.conf.replicator.connTimeoutS * 1000,
        nodeTimeoutMs: this.conf.replicator.nodeTimeoutS * 1000,
        signal: ctx.signal,
      },
    );
    const text = (await readBody(res)).toString('utf8');
    if (res.statusCode !== 200) throw new Error(`${node.replicationIp}:${node.replicationPort}${path} answered ${res.statusCode}: ${text.trim()}`);
    return text;
  }

  // ---- the receiving side ----

  async receiveSync(db: RowDb<R>, owner: string, req: SyncRequest): Promise<SyncResponse> {
    const r = req.info;
    let created = false;
    const out = await db.transact(owner, (tx) => {
      let changed = false;
      if (tx.info === undefined) {
        tx.info = { ...newOwnerInfo(r.createdAt, r.policyIndex), putTs: r.putTs, deleteTs: r.deleteTs, statusChangedAt: r.statusChangedAt, meta: { ...r.meta } };
        created = changed = true;
      } else {
        const info = tx.info;
        for (const k of ['putTs', 'deleteTs', 'statusChangedAt'] as const) {
          const m = maxTs(info[k], r[k]);
          if (m !== info[k]) {
            info[k] = m;
            changed = true;
          }
        }
        for (const [k, [v, ts]] of Object.entries(r.meta)) {
          const mine = info.meta[k];
          if (mine === undefined || Timestamp.parse(ts).compare(Timestamp.parse(mine[1])) > 0) {
            info.meta[k] = [v, ts];
            changed = true;
          }
        }
      }
      if (changed) {
        tx.touch();
        if (this.kind === 'container') tx.markAccountDirty();
      }
      const info = tx.info as OwnerInfo;
      return { id: info.id, hash: info.hash, maxSeq: info.maxSeq, created, changed };
    });
    if (out.changed) this.onMerged?.(db, owner);
    return { id: out.id, hash: out.hash, maxSeq: out.maxSeq, created: out.created };
  }

  async receiveRows(db: RowDb<R>, owner: string, ndjson: string): Promise<number> {
    const rows: { name: string; row: R }[] = [];
    for (const line of ndjson.split('\n')) {
      if (line.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new BadRequestError('rows: a line is not JSON');
      }
      if (!Array.isArray(parsed) || typeof parsed[0] !== 'string' || typeof parsed[2] !== 'string' || parsed[0].includes('\0')) {
        throw new BadRequestError('rows: each line must be [name, deleted, row]');
      }
      let row: R;
      try {
        row = this.model.decode(parsed[2] as string, parsed[1] === 1);
        // Validate the timestamps now, so that a hostile row cannot poison later merges.
        if ('ts' in row) Timestamp.parse(row.ts);
        else Timestamp.max(Timestamp.parse(row.putTs), Timestamp.parse(row.deleteTs));
      } catch {
        throw new BadRequestError(`rows: bad row for "${parsed[0] as string}"`);
      }
      rows.push({ name: parsed[0] as string, row });
    }
    const merged = await db.transact(owner, async (tx) => {
      if (tx.info === undefined) throw new NotFoundError();
      await tx.prefetch(rows.map((r) => r.name));
      let n = 0;
      for (const { name, row } of rows) if (await tx.mergeRow(name, row)) n++;
      if (n > 0 && this.kind === 'container') tx.markAccountDirty();
      return n;
    });
    if (merged > 0) this.onMerged?.(db, owner);
    return merged;
  }
}

/** `POST /_db_replicate/<dev>/<part>/<account>[/<container>]?op=sync|rows`, and `POST /_db_replicate` (a pass now). */
export function replicationRoutes<R extends AnyRow>(r: DbReplicator<R>): Koa.Middleware<AppState> {
  const prefix = '/_db_replicate';
  return async (ctx, next) => {
    if (!ctx.path.startsWith(prefix) || ctx.method !== 'POST') return next();
    if (ctx.path === prefix || ctx.path === `${prefix}/`) {
      ctx.body = await r.runPass();
      return;
    }
    const url = (ctx.req.url ?? '').slice(prefix.length);
    const path = r.kind === 'container' ? parseBackendPath(url, 4, 4) : parseBackendPath(url, 3, 3);
    const db = await r.dbs.get(path.device);
    const owner = ownerKey(path);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of ctx.req) {
      size += (chunk as Buffer).length;
      if (size > 64 * 1024 * 1024) throw new BadRequestError('replication request larger than 64 MiB');
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (ctx.query['op'] === 'sync') {
      let req: SyncRequest;
      try {
        req = JSON.parse(text) as SyncRequest;
        const i = req.info;
        for (const t of [i.createdAt, i.putTs, i.deleteTs, i.statusChangedAt]) Timestamp.parse(t);
        if (!Number.isInteger(i.policyIndex) || typeof i.meta !== 'object' || i.meta === null) throw new Error('bad info');
      } catch {
        throw new BadRequestError('sync: body must be the owner info as JSON');
      }
      ctx.body = await r.receiveSync(db, owner, req);
    } else if (ctx.query['op'] === 'rows') {
      ctx.body = { merged: await r.receiveRows(db, owner, text) };
    } else {
      throw new BadRequestError('op must be sync or rows');
    }
  };
}
