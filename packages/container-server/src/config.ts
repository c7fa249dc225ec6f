/**
 * The typed, frozen configuration of a container or account server, read once at start-up from
 * `etc/container-server.conf` / `etc/account-server.conf` (every key documented there).
 */
import { ConfigError, ConfigFile, DEFAULT_SWIFT_DIR, type ConfigSection } from '@swiftlet/common';

export type ServerKind = 'container' | 'account';

export interface UpdaterConfig {
  /** Seconds between sweeps of every pending account update (the durable retry records). */
  intervalS: number;
  /** Account updates in flight at once. */
  concurrency: number;
  /** Object row changes are batched this long before the container's stats go to the account. */
  accountUpdateDelayS: number;
  /** Create a missing account (PUT) when the account server answers 404 to a container row. */
  accountAutocreate: boolean;
  nodeTimeoutS: number;
  connTimeoutS: number;
}

export interface ReplicatorConfig {
  /** Seconds between replication passes; 0 disables replication. */
  intervalS: number;
  concurrency: number;
  perDiff: number;
  maxDiffs: number;
  nodeTimeoutS: number;
  connTimeoutS: number;
  /** Folder of `<kind>.recon` (pass statistics); none written when unset. */
  reconCachePath: string | undefined;
}

export interface DbServerConfig {
  kind: ServerKind;
  file: string;
  devices: string;
  mountCheck: boolean;
  bindIp: string;
  bindPort: number;
  swiftDir: string;
  workers: number;
  reclaimAgeS: number;
  nodeTimeoutS: number;
  connTimeoutS: number;
  logLevel: string;
  autoCreateAccountPrefix: string;
  updater: UpdaterConfig;
  replicator: ReplicatorConfig;
}

const LOG_LEVELS: Record<string, string> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  critical: 'fatal',
  fatal: 'fatal',
};

/** Keys this server reads, plus keys other daemons of a node commonly share in [DEFAULT]. */
const KNOWN_KEYS = new Set([
  'devices', 'mount_check', 'bind_ip', 'bind_port', 'swift_dir', 'workers', 'reclaim_age', 'node_timeout', 'conn_timeout',
  'log_level', 'auto_create_account_prefix', 'interval', 'concurrency', 'account_update_delay', 'account_autocreate',
  'per_diff', 'max_diffs', 'recon_cache_path', 'user', 'log_name', 'log_address', 'log_facility', 'log_requests',
]);

/** `section key` of every key in the file that this server does not know (to warn about typos). */
export function unknownConfigKeys(kind: ServerKind, conf: ConfigFile): string[] {
  const out: string[] = [];
  for (const name of ['DEFAULT', `${kind}-server`, 'container-updater', `${kind}-replicator`]) {
    if (!conf.hasSection(name)) continue;
    for (const key of conf.section(name).keys()) if (!KNOWN_KEYS.has(key)) out.push(`[${name}] ${key}`);
  }
  return [...new Set(out)];
}

export function loadDbServerConfig(kind: ServerKind, file: string): DbServerConfig {
  return parseDbServerConfig(kind, ConfigFile.load(file));
}

export function parseDbServerConfig(kind: ServerKind, conf: ConfigFile): DbServerConfig {
  const s = conf.section(`${kind}-server`);
  const workers = s.integer('workers', 1, { min: 0 });
  if (workers > 1) {
    // LevelDB allows one process per database; the server's single process owns every device db.
    throw new ConfigError(`${conf.file} [${kind}-server] workers must be 1 (was ${workers}): the LevelDB of a device belongs to one process`);
  }
  const rawLevel = s.string('log_level', 'INFO').toLowerCase();
  const logLevel = LOG_LEVELS[rawLevel];
  if (logLevel === undefined) throw new ConfigError(`${conf.file} [${kind}-server] log_level must be DEBUG, INFO, WARNING or ERROR (was "${rawLevel}")`);
  const nodeTimeoutS = s.number('node_timeout', 3, { min: 0.001 });
  const connTimeoutS = s.number('conn_timeout', 0.5, { min: 0.001 });
  const u: ConfigSection = conf.section('container-updater');
  const r: ConfigSection = conf.section(`${kind}-replicator`);
  return Object.freeze({
    kind,
    file: conf.file,
    devices: s.string('devices', '/srv/node'),
    mountCheck: s.boolean('mount_check', true),
    bindIp: s.string('bind_ip', '0.0.0.0'),
    bindPort: s.integer('bind_port', kind === 'container' ? 6201 : 6202, { min: 0, max: 65535 }),
    swiftDir: s.string('swift_dir', DEFAULT_SWIFT_DIR),
    workers: 1,
    reclaimAgeS: s.number('reclaim_age', 604800, { min: 0 }),
    nodeTimeoutS,
    connTimeoutS,
    logLevel,
    autoCreateAccountPrefix: s.string('auto_create_account_prefix', '.'),
    updater: Object.freeze({
      intervalS: u.number('interval', 60, { min: 0.01 }),
      concurrency: u.integer('concurrency', 4, { min: 1 }),
      accountUpdateDelayS: u.number('account_update_delay', 0.5, { min: 0 }),
      accountAutocreate: u.boolean('account_autocreate', true),
      nodeTimeoutS: u.number('node_timeout', nodeTimeoutS, { min: 0.001 }),
      connTimeoutS: u.number('conn_timeout', connTimeoutS, { min: 0.001 }),
    }),
    replicator: Object.freeze({
      intervalS: r.number('interval', 30, { min: 0 }),
      concurrency: r.integer('concurrency', 2, { min: 1 }),
      perDiff: r.integer('per_diff', 1000, { min: 1 }),
      maxDiffs: r.integer('max_diffs', 100, { min: 1 }),
      nodeTimeoutS: r.number('node_timeout', 10, { min: 0.001 }),
      connTimeoutS: r.number('conn_timeout', connTimeoutS, { min: 0.001 }),
      reconCachePath: r.optionalString('recon_cache_path') || undefined,
    }),
  });
}
