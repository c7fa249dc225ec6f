/**
 * `GET /recon/<what>`: the JSON Swift's recon middleware serves, for swift-recon-like tools and
 * for the cluster's own checks.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, type StoreError } from '@swiftlet/common';
import type { DiskFileManager } from '@swiftlet/diskfile';
import type { Logger } from 'pino';
import { countAsyncPendings } from './async-pending.js';
import type { ObjectServerConfig } from './config.js';

export const RECON_KINDS = ['diskusage', 'unmounted', 'quarantined', 'replication', 'async', 'ringmd5', 'version', 'time'] as const;
export type ReconKind = (typeof RECON_KINDS)[number];

export const SWIFTLET_VERSION = '0.1.0';

interface DeviceEntry {
  device: string;
  path?: string;
  mounted: boolean;
  error?: string;
}

export class Recon {
  constructor(
    private readonly config: ObjectServerConfig,
    private readonly diskfiles: DiskFileManager,
    private readonly logger: Logger,
  ) {}

  private async devices(): Promise<DeviceEntry[]> {
    const names = await readdir(this.config.devices).catch((err: NodeJS.ErrnoException) => {
      this.logger.warn({ err: err.message, devices: this.config.devices }, 'recon: cannot list devices');
      return [] as string[];
    });
    const out: DeviceEntry[] = [];
    for (const device of names.sort()) {
      if (device.startsWith('.')) continue;
      try {
        out.push({ device, path: await this.diskfiles.checkDevice(device), mounted: true });
      } catch (err) {
        out.push({ device, mounted: false, error: (err as StoreError).message });
      }
    }
    return out;
  }

  async get(what: string): Promise<unknown> {
    switch (what) {
      case 'diskusage': {
        const out = [];
        for (const d of await this.devices()) {
          if (!d.mounted || !d.path) {
            out.push({ device: d.device, mounted: false, size: '', used: '', avail: '' });
            continue;
          }
          const s = await statfs(d.path);
          const size = s.blocks * s.bsize;
          const avail = s.bavail * s.bsize;
          out.push({ device: d.device, mounted: true, size, used: size - s.bfree * s.bsize, avail });
        }
        return out;
      }
      case 'unmounted':
        return (await this.devices()).filter((d) => !d.mounted).map((d) => ({ device: d.device, mounted: false }));
      case 'quarantined': {
        let objects = 0;
        for (const d of await this.devices()) if (d.mounted) objects += await this.diskfiles.quarantineCount(d.device);
        return { objects, containers: 0, accounts: 0 };
      }
      case 'replication': {
        const file = join(this.config.reconCachePath, 'object.recon');
        try {
          return JSON.parse(await readFile(file, 'utf8')) as unknown;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn({ err, file }, 'recon: unreadable recon cache');
          return {};
        }
      }
      case 'async': {
        let n = 0;
        for (const d of await this.devices()) if (d.mounted && d.path) n += await countAsyncPendings(d.path);
        return { async_pending: n };
      }
      case 'ringmd5': {
        const out: Record<string, string> = {};
        const names = await readdir(this.config.swiftDir).catch(() => [] as string[]);
        for (const name of names.filter((n) => n.endsWith('.ring.gz')).sort()) {
          const file = join(this.config.swiftDir, name);
          out[file] = createHash('md5').update(await readFile(file)).digest('hex');
        }
        return out;
      }
      case 'version':
        return { swiftletversion: SWIFTLET_VERSION };
      case 'time':
        return { time: Date.now() / 1000 };
      default:
        throw new NotFoundError(`Invalid path: /recon/${what} (one of ${RECON_KINDS.join(', ')})`);
    }
  }
}
