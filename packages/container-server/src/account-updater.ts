/**
 * Container -> account updates (Swift's container updater), run inside the container server
 * because the server process owns the device databases.
 *
 * Every change a container's account row depends on (container PUT/DELETE, object rows) writes a
 * durable record `u\0<owner>` in the same synced batch as the change. The record is deleted only
 * after every account replica accepted the container's stats as they were when sent, and only if
 * no change happened since; so an update can be late but never lost, even across a crash.
 *
 * Delivery: container PUT/DELETE send at once (the request waits, bounded by node_timeout);
 * object row changes are batched per container for `account_update_delay` seconds; and a sweep
 * every `interval` seconds (and at start) retries every record left, e.g. while an account
 * server was down. `swiftlet-container-updater` asks a running server for a sweep now.
 */
import pLimit from 'p-limit';
import {
  Timestamp,
  backendPath,
  backendRequest,
  readBody,
  type Logger,
} from '@swiftlet/common';
import { Ring } from '@swiftlet/ring';
import type { UpdaterConfig } from './config.js';
import type { DeviceDbs } from './http/devices.js';
import { parseOwnerKey } from './db/keys.js';
import type { RowDb } from './db/row-db.js';
import type { ObjectRow } from './db/row-model.js';

export interface SweepStats {
  attempted: number;
  succeeded: number;
  failed: number;
}

interface AccountNode {
  ip: string;
  port: number;
  device: string;
}

export interface AccountRingLike {
  getNodes(account: string): { part: number; nodes: AccountNode[] };
}

export class AccountUpdater {
  private pending = new Map<RowDb<ObjectRow>, Set<string>>();
  private debounce: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<SweepStats> | undefined;
  private ring: AccountRingLike | undefined;
  private readonly limit;
  private stopped = false;
  private inflight = new Set<Promise<unknown>>();
  readonly totals: SweepStats = { attempted: 0, succeeded: 0, failed: 0 };

  constructor(
    private readonly dbs: DeviceDbs<ObjectRow>,
    private readonly conf: UpdaterConfig,
    private readonly swiftDir: string,
    private readonly logger: Logger,
    ring?: AccountRingLike,
  ) {
    this.limit = pLimit(conf.concurrency);
    this.ring = ring;
  }

  private accountRing(): AccountRingLike {
    this.ring ??= Ring.forKind(this.swiftDir, 'account');
    return this.ring;
  }

  start(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), this.conf.intervalS * 1000);
    this.sweepTimer.unref();
    // Records left by an earlier run (crash, unreachable accounts) go out soon after start.
    setTimeout(() => void this.sweep(), 200).unref();
  }

  /** An object row changed: the account hears the container's stats after the batching delay. */
  schedule(db: RowDb<ObjectRow>, owner: string): void {
    let set = this.pending.get(db);
    if (set === undefined) this.pending.set(db, (set = new Set()));
    set.add(owner);
    if (this.debounce === undefined && !this.stopped) {
      this.debounce = setTimeout(() => {
        this.debounce = undefined;
        const work = this.pending;
        this.pending = new Map();
        for (const [d, owners] of work) for (const o of owners) void this.track(this.limit(() => this.update(d, o)));
      }, this.conf.accountUpdateDelayS * 1000);
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  /** Sends the container's current stats to every account replica; true if all accepted. */
  async update(db: RowDb<ObjectRow>, owner: string): Promise<boolean> {
    this.totals.attempted++;
    try {
      const info = await db.readInfo(owner);
      if (info === undefined) {
        await db.clearAccountUpdate(owner, 0);
        this.totals.succeeded++;
        return true;
      }
      const id = parseOwnerKey(owner);
      const container = id.container as string;
      const { part, nodes } = this.accountRing().getNodes(id.account);
      const headers = {
        'x-put-timestamp': info.putTs,
        'x-delete-timestamp': info.deleteTs,
        'x-object-count': String(info.rows),
        'x-bytes-used': String(info.bytes),
        'x-backend-storage-policy-index': String(info.policyIndex),
        // The stats timestamp: of two reports of one container, the later sent wins.
        'x-timestamp': Timestamp.now().internal,
        'user-agent': `container-updater ${process.pid}`,
      };
      const results = await Promise.all(
        nodes.map((node) => this.sendRow(node, part, id.account, container, headers)),
      );
      if (results.every((ok) => ok)) {
        await db.clearAccountUpdate(owner, info.updateGen);
        this.totals.succeeded++;
        return true;
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, device: db.device, owner: owner.split('\0').join('/') }, 'account update failed; kept for retry');
    }
    this.totals.failed++;
    return false;
  }

  private async sendRow(node: AccountNode, part: number, account: string, container: string, headers: Record<string, string>): Promise<boolean> {
    const timeouts = { connTimeoutMs: this.conf.connTimeoutS * 1000, nodeTimeoutMs: this.conf.nodeTimeoutS * 1000 };
    const put = async (): Promise<number> => {
      const res = await backendRequest(node, { method: 'PUT', path: backendPath(node.device, part, account, container), headers, ...timeouts });
      await readBody(res, 1 << 20);
      return res.statusCode ?? 0;
    };
    try {
      let status = await put();
      if (status === 404 && this.conf.accountAutocreate) {
        // The account was never created on this replica (or was reclaimed): create it, then retry.
        const res = await backendRequest(node, {
          method: 'PUT',
          path: backendPath(node.device, part, account),
          headers: { 'x-timestamp': Timestamp.now().internal, 'user-agent': headers['user-agent'] },
          ...timeouts,
        });
        await readBody(res, 1 << 20);
        if ((res.statusCode ?? 0) < 300) status = await put();
      }
      if (status >= 200 && status < 300) return true;
      this.logger.warn({ node: `${node.ip}:${node.port}/${node.device}`, account, container, status }, 'account server refused container update');
    } catch (err) {
      this.logger.warn({ node: `${node.ip}:${node.port}/${node.device}`, account, container, err: (err as Error).message }, 'account server unreachable');
    }
    return false;
  }

  /** Retries every durable record on every device; one sweep at a time. */
  sweep(): Promise<SweepStats> {
    this.sweeping ??= this.doSweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  /** A sweep that starts after any sweep under way (the updater bin wants today's answer). */
  async sweepNow(): Promise<SweepStats> {
    if (this.sweeping !== undefined) await this.sweeping.catch(() => undefined);
    return this.sweep();
  }

  private async doSweep(): Promise<SweepStats> {
    const stats: SweepStats = { attempted: 0, succeeded: 0, failed: 0 };
    const started = Date.now();
    for (const db of await this.dbs.all()) {
      if (this.stopped) break;
      const records = await db.pendingAccountUpdates();
      const results = await Promise.all(records.map(([owner]) => this.track(this.limit(() => this.update(db, owner)))));
      for (const ok of results) {
        stats.attempted++;
        if (ok) stats.succeeded++;
        else stats.failed++;
      }
    }
    if (stats.attempted > 0) this.logger.info({ ...stats, ms: Date.now() - started }, 'container updater sweep');
    return stats;
  }

  /** Stops timers and waits for updates in flight (the records of unsent ones stay on disk). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    await Promise.allSettled([...this.inflight]);
    if (this.sweeping !== undefined) await this.sweeping.catch(() => undefined);
  }
}
