/**
 * One LevelDB per device and kind (`<devices>/<device>/containers.db/`, `.../accounts.db/`).
 *
 * LevelDB lets one process open a database, so the server process owns it: the container ->
 * account updater and the database replicator run inside that process, and anything outside goes
 * through the server's HTTP API.
 *
 * Writes that acknowledge a client are synced. Concurrent writes are group-committed: while one
 * synced batch is on its way to disk, later writes queue up and go out together in the next one,
 * in arrival order, so one fsync acknowledges many requests.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import type { Logger } from '@swiftlet/common';

export type BatchOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

export type DbSnapshot = ReturnType<Level<string, string>['snapshot']>;

interface Waiter {
  ops: BatchOp[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class DeviceDb {
  readonly db: Level<string, string>;
  private queue: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private failed: unknown;

  private constructor(
    readonly device: string,
    readonly path: string,
    private readonly logger: Logger,
  ) {
    this.db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  }

  static async open(devicePath: string, device: string, dbName: string, logger: Logger): Promise<DeviceDb> {
    const path = join(devicePath, dbName);
    await mkdir(path, { recursive: true });
    const d = new DeviceDb(device, path, logger.child({ device }));
    await d.db.open();
    return d;
  }

  /** Queues `ops` for the next synced batch; resolves once they are on disk. */
  write(ops: BatchOp[]): Promise<void> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      if (this.flushing === undefined) this.flushing = this.flush();
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        const ops = group.length === 1 ? (group[0] as Waiter).ops : group.flatMap((w) => w.ops);
        try {
          await this.db.batch(ops, { sync: true });
        } catch (err) {
          // The in-memory state of later writers may build on this batch: refuse further writes
          // until the server restarts and reads the database afresh.
          this.failed = err;
          this.logger.error({ err, path: this.path }, 'database write failed; device refuses writes until restart');
          for (const w of group) w.reject(err);
          for (const w of this.queue.splice(0)) w.reject(err);
          return;
        }
        for (const w of group) w.resolve();
      }
    } finally {
      this.flushing = undefined;
    }
  }

  snapshot(): DbSnapshot {
    return this.db.snapshot();
  }

  async close(): Promise<void> {
    while (this.flushing !== undefined) await this.flushing;
    await this.db.close();
  }
}
