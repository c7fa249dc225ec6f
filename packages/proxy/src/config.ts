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
  /** Seconds a client may take to send a whole request (client_timeout, 300; 0 = no limit). */
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
    clientTimeoutS: sec.number('client_timeout', 300, { min: 0 }),
    backend: proxyBackendConfigFromSection(sec),
    s3: s3ConfigFromSection(conf.section('s3api'), swiftDir),
  });
}
