/**
 * proxy-server.conf, parsed once into one frozen object: `[DEFAULT]` (bind_ip, bind_port,
 * swift_dir, workers, log_level), `[proxy-server]` (the data path's keys, read by the backend's
 * own parser) and `[s3api]` (the gateway). See etc/proxy-server.conf for every key and default.
 */
import { ConfigError, DEFAULT_SWIFT_DIR, type ConfigFile } from '@swiftlet/common';
import { proxyBackendConfigFromSection, type ProxyBackendConfig } from './backend/index.js';
import { s3ConfigFromSection, type S3Config } from './s3/s3-config.js';

export interface ProxyServerConfig {
  file: string;
  bindIp: string;
  bindPort: number;
  swiftDir: string;
  /** Processes sharing the port (workers, 1; 0 = one per CPU). */
  workers: number;
  logLevel: string;
  /** Seconds a connection may stay idle between requests (keep_alive_timeout, 5). */
  keepAliveTimeoutS: number;
  /** Seconds a client connection may stay silent in the middle of a request (client_timeout, 60; 0 = no limit). */
  clientTimeoutS: number;
  backend: Required<ProxyBackendConfig>;
  s3: S3Config;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'warning', 'info', 'debug', 'trace'];

export function proxyServerConfig(conf: ConfigFile): ProxyServerConfig {
  const sec = conf.section('proxy-server');
  const swiftDir = sec.string('swift_dir', DEFAULT_SWIFT_DIR);
  let logLevel = sec.string('log_level', 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`${conf.file} log_level must be one of ${LOG_LEVELS.join(', ')} (was "${logLevel}")`);
  if (logLevel === 'warning') logLevel = 'warn';
  return Object.freeze({
    file: conf.file,
    bindIp: sec.string('bind_ip', '0.0.0.0'),
    bindPort: sec.integer('bind_port', 8080, { min: 0, max: 65535 }),
    swiftDir,
    workers: sec.integer('workers', 1, { min: 0, max: 256 }),
    logLevel,
    keepAliveTimeoutS: sec.number('keep_alive_timeout', 5, { min: 0 }),
    clientTimeoutS: sec.number('client_timeout', 60, { min: 0 }),
    backend: proxyBackendConfigFromSection(sec),
    s3: s3ConfigFromSection(conf.section('s3api'), swiftDir),
  });
}

const KNOWN_KEYS: Record<string, readonly string[]> = {
  DEFAULT: ['bind_ip', 'bind_port', 'swift_dir', 'workers', 'log_level'],
  'proxy-server': [
    'client_timeout', 'keep_alive_timeout', 'node_timeout', 'conn_timeout', 'post_quorum_timeout',
    'error_suppression_limit', 'error_suppression_interval', 'sorting_method', 'timing_expiry',
    'request_node_count', 'recheck_account_existence', 'recheck_container_existence',
    'account_autocreate', 'check_container_existence', 'consistent_reads',
  ],
  s3api: [
    'region', 'storage_domain', 'credentials_file', 'credentials_reload_interval', 'max_clock_skew',
    'max_object_size', 'max_multi_delete_objects', 'multi_delete_concurrency', 'verify_buffer_size',
    'bucket_registry_account', 'abandoned_upload_expiry',
  ],
};

/** `section key` of every key the proxy does not know (typos), for a warning at start-up. */
export function unknownProxyKeys(conf: ConfigFile): string[] {
  const defaults = new Set(conf.section('DEFAULT').keys());
  const out: string[] = [];
  for (const name of conf.sectionNames()) {
    const known = KNOWN_KEYS[name];
    if (!known) {
      out.push(`[${name}]`);
      continue;
    }
    const keys = name === 'DEFAULT' ? [...defaults] : conf.section(name).keys().filter((k) => !defaults.has(k));
    for (const k of keys) if (!known.includes(k) && !(name === 'DEFAULT' && Object.values(KNOWN_KEYS).some((l) => l.includes(k)))) out.push(`[${name}] ${k}`);
  }
  return out;
}
