/**
 * The device databases a server has opened, one per device, opened on first use. A device that
 * is missing (or not a mount point, with mount_check) answers 507 for every request.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InsufficientStorageError, type Logger } from '@swiftlet/common';
import { DeviceDb } from '../db/device-db.js';
import { RowDb } from '../db/row-db.js';
import type { AnyRow, RowModel } from '../db/row-model.js';

const RECHECK_MS = 1000;

export class DeviceDbs<R extends AnyRow> {
  private open = new Map<string, Promise<RowDb<R>>>();
  private checkedAt = new Map<string, number>();

  constructor(
    private readonly devices: string,
    private readonly mountCheck: boolean,
    private readonly dbName: string,
    private readonly model: RowModel<R>,
    private readonly logger: Logger,
  ) {}

  /** The device's database; InsufficientStorageError (507) if the device is unusable. */
  async get(device: string): Promise<RowDb<R>> {
    if (device === '' || device === '.' || device === '..' || device.includes('/')) throw new InsufficientStorageError();
    const now = Date.now();
    if ((this.checkedAt.get(device) ?? 0) + RECHECK_MS < now) {
      await this.checkDevice(device);
      this.checkedAt.set(device, now);
    }
    let p = this.open.get(device);
    if (p === undefined) {
      p = DeviceDb.open(join(this.devices, device), device, this.dbName, this.logger).then(
        (dev) => new RowDb(dev, this.model),
        (err: unknown) => {
          // e.g. LevelDB's LOCK held by another process, or a broken disk: the device is unusable.
          this.logger.error({ err, device }, 'cannot open device database');
          this.open.delete(device);
          throw new InsufficientStorageError();
        },
      );
      this.open.set(device, p);
    }
    return p;
  }

  private async checkDevice(device: string): Promise<void> {
    const path = join(this.devices, device);
    try {
      const st = await stat(path);
      if (!st.isDirectory()) throw new InsufficientStorageError();
      if (this.mountCheck) {
        const parent = await stat(this.devices);
        if (parent.dev === st.dev) throw new InsufficientStorageError();
      }
    } catch (err) {
      this.checkedAt.delete(device);
      if (err instanceof InsufficientStorageError) throw err;
      throw new InsufficientStorageError();
    }
  }

  /** The databases opened so far (the updater and replicator work on these and on `all()`). */
  opened(): Promise<RowDb<R>[]> {
    return Promise.all([...this.open.values()].map((p) => p.catch(() => undefined))).then((l) =>
      l.filter((x): x is RowDb<R> => x !== undefined),
    );
  }

  /** Opens the database of every usable device under `devices` (for background passes). */
  async all(): Promise<RowDb<R>[]> {
    let names: string[] = [];
    try {
      names = await readdir(this.devices);
    } catch (err) {
      this.logger.error({ err, devices: this.devices }, 'cannot list devices');
    }
    const out: RowDb<R>[] = [];
    for (const name of names.sort()) {
      try {
        out.push(await this.get(name));
      } catch {
        // unusable device: skipped this pass (logged when opening failed)
      }
    }
    return out;
  }

  async close(): Promise<void> {
    const dbs = await this.opened();
    await Promise.all(dbs.map((d) => d.dev.close()));
    this.open.clear();
  }
}
