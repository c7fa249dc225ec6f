/**
 * The object server's and object updater's settings, read once at start-up from the INI file
 * (Swift's key names; `[DEFAULT]` is inherited by `[object-server]` and `[object-updater]`).
 * Every key and default is documented in etc/object-server.conf.
 */
import { ConfigError, ConfigFile, type ConfigSection, DEFAULT_SWIFT_DIR } from '@swiftlet/common';
import type { ReadChecksum } from '@swiftlet/diskfile';

/** Swift's default `allowed_headers`: stored on PUT/POST and returned on GET/HEAD. */
export const DEFAULT_ALLOWED_HEADERS = [
  'Content-Disposition',
  'Content-Encoding',
  'X-Delete-At',
  'X-Object-Manifest',
  'X-Static-Large-Object',
  'Cache-Control',
  'Content-Language',
  'Expires',
  'X-Robots-Tag',
];

export interface FallocateReserve {
  percent?: number;
  bytes?: number;
}

export interface ObjectServerConfig {
  file: string;
  devices: string;
  mountCheck: boolean;
  bindIp: string;
  bindPort: number;
  workers: number;
  swiftDir: string;
  reclaimAgeS: number;
  nodeTimeoutMs: number;
  connTimeoutMs: number;
  containerUpdateTimeoutMs: number;
  clientTimeoutMs: number;
  maxUploadTimeMs: number;
  fallocateReserve: FallocateReserve;
  readChecksum: ReadChecksum;
  keepCacheSize: number;
  reconCachePath: string;
  logLevel: string;
  logRequests: boolean;
  allowedHeaders: string[];
  maxSyncEntryBytes: number;
}

export interface ObjectUpdaterConfig {
  file: string;
  devices: string;
  mountCheck: boolean;
  swiftDir: string;
  intervalS: number;
  concurrency: number;
  nodeTimeoutMs: number;
  connTimeoutMs: number;
  slowdownS: number;
  reconCachePath: string;
  logLevel: string;
}

/** `fallocate_reserve`: bytes (`10737418240`) or a percentage of the device (`1%`). */
export function parseFallocateReserve(raw: string, where: string): FallocateReserve {
  const v = raw.trim();
  const m = /^(\d+(?:\.\d+)?)\s*(%?)$/.exec(v);
  if (!m) throw new ConfigError(`${where} fallocate_reserve must be a byte count or a percentage like 1% (was "${v}")`);
  const n = Number(m[1]);
  if (m[2] === '%') {
    if (n > 100) throw new ConfigError(`${where} fallocate_reserve must be at most 100% (was "${v}")`);
    return { percent: n };
  }
  return { bytes: n };
}

function common(sec: ConfigSection): Pick<ObjectServerConfig, 'devices' | 'mountCheck' | 'swiftDir' | 'reconCachePath' | 'logLevel'> {
  return {
    devices: sec.string('devices', '/srv/node'),
    mountCheck: sec.boolean('mount_check', true),
    swiftDir: sec.string('swift_dir', DEFAULT_SWIFT_DIR),
    reconCachePath: sec.string('recon_cache_path', '/var/cache/swiftlet'),
    logLevel: sec.string('log_level', 'info').toLowerCase(),
  };
}

function readChecksum(value: string, file: string): ReadChecksum {
  const v = value.trim().toLowerCase();
  if (v === 'crc32' || v === 'md5') return v;
  throw new ConfigError(`${file} [object-server] read_checksum "${value}": expected crc32 or md5`);
}

export function objectServerConfig(conf: ConfigFile): ObjectServerConfig {
  const sec = conf.section('object-server');
  const workers = sec.string('workers', '1');
  return Object.freeze({
    file: conf.file,
    ...common(sec),
    bindIp: sec.string('bind_ip', '0.0.0.0'),
    bindPort: sec.integer('bind_port', 6200, { min: 0, max: 65535 }),
    workers: workers === 'auto' ? 0 : sec.integer('workers', 1, { min: 0, max: 64 }),
    reclaimAgeS: sec.number('reclaim_age', 604800, { min: 0 }),
    nodeTimeoutMs: sec.number('node_timeout', 3, { min: 0 }) * 1000,
    connTimeoutMs: sec.number('conn_timeout', 0.5, { min: 0 }) * 1000,
    containerUpdateTimeoutMs: sec.number('container_update_timeout', 1, { min: 0 }) * 1000,
    clientTimeoutMs: sec.number('client_timeout', 60, { min: 0 }) * 1000,
    maxUploadTimeMs: sec.number('max_upload_time', 86400, { min: 0 }) * 1000,
    fallocateReserve: parseFallocateReserve(sec.string('fallocate_reserve', '1%'), `${conf.file} [object-server]`),
    readChecksum: readChecksum(sec.string('read_checksum', 'crc32'), conf.file),
    keepCacheSize: sec.number('keep_cache_size', 5242880, { min: 0 }),
    logRequests: sec.boolean('log_requests', true),
    allowedHeaders: sec.list('allowed_headers', DEFAULT_ALLOWED_HEADERS),
    maxSyncEntryBytes: sec.number('max_sync_entry_bytes', 5368709122 + 1024 * 1024, { min: 1 }),
  });
}

export function objectUpdaterConfig(conf: ConfigFile): ObjectUpdaterConfig {
  const sec = conf.section('object-updater');
  return Object.freeze({
    file: conf.file,
    ...common(sec),
    intervalS: sec.number('interval', 300, { min: 0 }),
    concurrency: sec.integer('concurrency', 8, { min: 1 }),
    nodeTimeoutMs: sec.number('node_timeout', 10, { min: 0 }) * 1000,
    connTimeoutMs: sec.number('conn_timeout', 0.5, { min: 0 }) * 1000,
    slowdownS: sec.number('slowdown', 0.01, { min: 0 }),
  });
}
