/**
 * The object updater: delivers async pendings (container updates that failed when the object was
 * written). Per pass it walks `<device>/async_pending[-N]/<prefix>/`, newest file first per object
 * hash; older pendings of the same object are obsolete and unlinked (Swift's outdated_unlinks).
 * A pending is removed only when every container replica it names answered 2xx; replicas that
 * accepted are dropped from the file so they are not updated twice.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import {
  type AsyncPending,
  type ContainerNode,
  policyOfAsyncDir,
  readAsyncPending,
  removeAsyncPending,
  removeIfEmpty,
  writeAsyncPending,
} from './async-pending.js';
import type { ObjectUpdaterConfig } from './config.js';
import { sendOneUpdate } from './container-update.js';
import type { RingCache } from './rings.js';

export interface UpdaterPassStats {
  devices: number;
  found: number;
  successes: number;
  failures: number;
  /** Older pendings of an object superseded by a newer one. */
  unlinks: number;
  /** Partially delivered: some replicas accepted, the rest kept for the next pass. */
  partial: number;
  errors: number;
  elapsedS: number;
}

function shuffle<T>(list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j] as T, list[i] as T];
  }
  return list;
}

export class ObjectUpdater {
  constructor(
    private readonly config: ObjectUpdaterConfig,
    private readonly rings: RingCache,
    private readonly logger: Logger,
    /** Tells whether a device may be used (mount_check); default: it is a directory. */
    private readonly deviceUsable: (device: string) => Promise<boolean> = async (device) =>
      (await stat(join(config.devices, device)).catch(() => undefined))?.isDirectory() ?? false,
  ) {}

  private stopped = false;

  stop(): void {
    this.stopped = true;
  }

  async runOnce(): Promise<UpdaterPassStats> {
    const started = Date.now();
    const stats: UpdaterPassStats = { devices: 0, found: 0, successes: 0, failures: 0, unlinks: 0, partial: 0, errors: 0, elapsedS: 0 };
    const limit = pLimit(this.config.concurrency);
    const devices = await readdir(this.config.devices).catch((err: NodeJS.ErrnoException) => {
      this.logger.error({ err: err.message, devices: this.config.devices }, 'cannot list devices');
      return [] as string[];
    });
    for (const device of shuffle(devices.filter((d) => !d.startsWith('.')))) {
      if (this.stopped) break;
      if (!(await this.deviceUsable(device))) {
        this.logger.warn({ device }, 'skipping unmounted device');
        continue;
      }
      stats.devices += 1;
      const devicePath = join(this.config.devices, device);
      for (const dir of await readdir(devicePath).catch(() => [] as string[])) {
        const policy = policyOfAsyncDir(dir);
        if (policy === undefined) continue;
        const asyncDir = join(devicePath, dir);
        // Jobs run across prefix folders (not one folder at a time), bounded by the limiter; the
        // list of queued jobs is drained now and then so that memory stays flat.
        let jobs: Promise<void>[] = [];
        const touched: string[] = [];
        for (const prefix of shuffle(await readdir(asyncDir).catch(() => [] as string[]))) {
          if (this.stopped) break;
          const prefixDir = join(asyncDir, prefix);
          touched.push(prefixDir);
          const files = (await readdir(prefixDir).catch(() => [] as string[])).filter((f) => !f.startsWith('.')).sort().reverse();
          const seen = new Set<string>();
          for (const name of files) {
            const dash = name.indexOf('-');
            const hash = dash > 0 ? name.slice(0, dash) : name;
            stats.found += 1;
            if (seen.has(hash)) {
              // Sorted newest first: a later file of the same object is older and obsolete.
              await removeAsyncPending(join(prefixDir, name));
              stats.unlinks += 1;
              continue;
            }
            seen.add(hash);
            jobs.push(limit(() => this.deliver(join(prefixDir, name), stats)));
          }
          if (jobs.length >= 1000) {
            await Promise.all(jobs);
            jobs = [];
          }
        }
        await Promise.all(jobs);
        for (const prefixDir of touched) await removeIfEmpty(prefixDir);
      }
    }
    stats.elapsedS = (Date.now() - started) / 1000;
    this.logger.info({ pass: 'object-updater', ...stats }, 'object update pass done');
    return stats;
  }

  private async nodesFor(pending: AsyncPending): Promise<ContainerNode[]> {
    if (pending.nodes.length > 0) return pending.nodes;
    const ring = this.rings.get('container');
    const { part, nodes } = ring.getNodes(pending.account, pending.container);
    return nodes.map((n) => ({ ip: n.ip, port: n.port, device: n.device, partition: part }));
  }

  private async deliver(file: string, stats: UpdaterPassStats): Promise<void> {
    let pending: AsyncPending;
    try {
      pending = await readAsyncPending(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      stats.errors += 1;
      this.logger.error({ err: (err as Error).message, file }, 'unreadable async pending; left in place');
      return;
    }
    let nodes: ContainerNode[];
    try {
      nodes = await this.nodesFor(pending);
    } catch (err) {
      stats.errors += 1;
      this.logger.error({ err: (err as Error).message, file }, 'no container nodes for async pending');
      return;
    }
    const timeouts = { connTimeoutMs: this.config.connTimeoutMs, nodeTimeoutMs: this.config.nodeTimeoutMs };
    const results = await Promise.all(nodes.map((n) => sendOneUpdate(n, pending, timeouts, this.logger)));
    const remaining = nodes.filter((_, i) => !results[i]);
    if (remaining.length === 0) {
      await removeAsyncPending(file);
      stats.successes += 1;
      this.logger.debug({ file }, 'async pending delivered');
    } else {
      stats.failures += 1;
      if (remaining.length < nodes.length) {
        stats.partial += 1;
        await writeAsyncPending(file, { ...pending, nodes: remaining });
      }
    }
    if (this.config.slowdownS > 0) await new Promise((r) => setTimeout(r, this.config.slowdownS * 1000));
  }
}
