/**
 * The object replicator's settings: the node's object-server config file, `[DEFAULT]` plus
 * `[object-replicator]` (Swift's key names; every key and default is documented in
 * etc/object-server.conf). Read once at start-up into a frozen object.
 */
import { ConfigError, ConfigFile, DEFAULT_SWIFT_DIR } from '@swiftlet/common';

export interface ObjectReplicatorConfig {
  file: string;
  devices: string;
  mountCheck: boolean;
  swiftDir: string;
  /** Which ring devices are this node's: replication ip (0.0.0.0 = any local address) and port. */
  bindIp: string;
  bindPort: number;
  intervalS: number;
  concurrency: number;
  handoffsFirst: boolean;
  /** 0 = auto: remove a handoff partition only when every primary has it. */
  handoffDelete: number;
  httpTimeoutMs: number;
  nodeTimeoutMs: number;
  connTimeoutMs: number;
  syncTimeoutMs: number;
  lockupTimeoutS: number;
  statsIntervalS: number;
  reclaimAgeS: number;
  reconCachePath: string;
  /** 0 = unlimited. */
  maxBytesPerSecond: number;
  ringCheckIntervalS: number;
  /** gzip the pushed tar: yes, no, or auto (when the files pushed are small, mean < 64 KiB). */
  syncCompress: 'auto' | 'yes' | 'no';
  /** Ask peers for many partitions' hashes per request (Swiftlet's own key; Swift has none). */
  batchReplicate: boolean;
  logLevel: string;
}

export function objectReplicatorConfig(conf: ConfigFile): ObjectReplicatorConfig {
  const sec = conf.section('object-replicator');
  // bind_ip/bind_port usually sit in [DEFAULT]; a file that keeps them in [object-server] only
  // still describes the same node, so fall back to that section.
  const server = conf.section('object-server');
  const bindIp = sec.has('bind_ip') ? sec.string('bind_ip', '0.0.0.0') : server.string('bind_ip', '0.0.0.0');
  const bindPort = sec.has('bind_port')
    ? sec.integer('bind_port', 6200, { min: 1, max: 65535 })
    : server.integer('bind_port', 6200, { min: 1, max: 65535 });
  const handoffDeleteRaw = sec.string('handoff_delete', 'auto').trim().toLowerCase();
  return Object.freeze({
    file: conf.file,
    devices: sec.string('devices', '/srv/node'),
    mountCheck: sec.boolean('mount_check', true),
    swiftDir: sec.string('swift_dir', DEFAULT_SWIFT_DIR),
    bindIp,
    bindPort,
    intervalS: sec.number('interval', 30, { min: 0 }),
    // Swift's default is 1. A job mostly waits on its peers (a refill's receiver was idle about
    // half the time with one job per sender); two at once refilled a wiped device ~13 % faster
    // with the in-sync pass no slower (bench/RESULTS.md, replication).
    concurrency: sec.integer('concurrency', 2, { min: 1, max: 1000 }),
    handoffsFirst: sec.boolean('handoffs_first', false),
    handoffDelete: handoffDeleteRaw === 'auto' ? 0 : sec.integer('handoff_delete', 0, { min: 0 }),
    httpTimeoutMs: sec.number('http_timeout', 60, { min: 0.001 }) * 1000,
    nodeTimeoutMs: sec.number('node_timeout', 10, { min: 0.001 }) * 1000,
    connTimeoutMs: sec.number('conn_timeout', 0.5, { min: 0.001 }) * 1000,
    syncTimeoutMs: sec.number('sync_timeout', 900, { min: 0.001 }) * 1000,
    lockupTimeoutS: sec.number('lockup_timeout', 1800, { min: 0.001 }),
    statsIntervalS: sec.number('stats_interval', 300, { min: 0.001 }),
    reclaimAgeS: sec.number('reclaim_age', 604800, { min: 0 }),
    reconCachePath: sec.string('recon_cache_path', '/var/cache/swiftlet'),
    maxBytesPerSecond: sec.number('max_bytes_per_second', 0, { min: 0 }),
    ringCheckIntervalS: sec.number('ring_check_interval', 15, { min: 0.001 }),
    syncCompress: syncCompress(sec.string('sync_compress', 'auto'), conf.file),
    batchReplicate: sec.boolean('batch_replicate', true),
    logLevel: sec.string('log_level', 'info').toLowerCase(),
  });
}

function syncCompress(raw: string, file: string): 'auto' | 'yes' | 'no' {
  const v = raw.trim().toLowerCase();
  if (v === 'auto') return 'auto';
  if (['true', '1', 'yes', 'on', 't', 'y'].includes(v)) return 'yes';
  if (['false', '0', 'no', 'off', 'f', 'n'].includes(v)) return 'no';
  throw new ConfigError(`${file} [object-replicator] sync_compress must be auto, yes or no (was "${raw}")`);
}
