/**
 * The daemon life cycle shared by the container and account server bins: load the config, build
 * the app, listen, and on SIGTERM/SIGINT stop accepting, drain, close every LevelDB, exit 0.
 */
import { createServer, type Server } from 'node:http';
import { createLogger, type Logger } from '@swiftlet/common';
import { ConfigFile } from '@swiftlet/common';
import { loadDbServerConfig, unknownConfigKeys, type DbServerConfig, type ServerKind } from './config.js';
import { createAccountServer } from './account-server.js';
import { createContainerServer, type ContainerServer } from './container-server.js';

export interface RunningServer {
  server: Server;
  logger: Logger;
  /** The address it listens on (bind_ip as configured, the port bound). */
  bindIp: string;
  bindPort: number;
  /** A container server's in-process object row updates (ContainerServer.applyObjectUpdate). */
  applyObjectUpdate?: ContainerServer['applyObjectUpdate'];
  stop(): Promise<void>;
}

/**
 * Starts a container or account server from its config file in this process: listening, its
 * updater and replicator running. `stop` stops accepting, drains and closes every LevelDB.
 * `conf`: the file's config when the caller has already loaded it (to check it first).
 */
export async function startDbServer(
  kind: ServerKind,
  confFile: string,
  opts: { logger?: Logger; conf?: DbServerConfig } = {},
): Promise<RunningServer> {
  const conf = opts.conf ?? loadDbServerConfig(kind, confFile);
  const log = opts.logger ?? createLogger(`${kind}-server`, { level: process.env['SWIFTLET_LOG_LEVEL'] ?? conf.logLevel });
  const built = kind === 'container' ? createContainerServer(conf, log) : createAccountServer(conf, log);
  const server = createServer(built.app.callback());
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(conf.bindPort, conf.bindIp, () => resolve());
  });
  log.info({ conf }, `swiftlet-${kind}-server listening on ${conf.bindIp}:${conf.bindPort}`);
  const unknown = unknownConfigKeys(kind, ConfigFile.load(confFile));
  if (unknown.length > 0) log.warn({ keys: unknown, file: confFile }, 'unknown config keys ignored');
  if ('updater' in built) built.updater.start();
  built.replicator.start();
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await built.close();
      log.info('stopped');
    })();
    return stopping;
  };
  const addr = server.address();
  const bindPort = typeof addr === 'object' && addr ? addr.port : conf.bindPort;
  return { server, logger: log, bindIp: conf.bindIp, bindPort, ...('applyObjectUpdate' in built ? { applyObjectUpdate: built.applyObjectUpdate } : {}), stop };
}

/** The container and account server bins: startDbServer, then SIGTERM/SIGINT stop it and exit 0. */
export async function runDbServer(kind: ServerKind, argv: string[]): Promise<void> {
  const program = `swiftlet-${kind}-server`;
  const confFile = argv[0];
  if (confFile === undefined || confFile === '-h' || confFile === '--help') {
    process.stderr.write(`usage: ${program} CONF\n`);
    process.exit(confFile === undefined ? 2 : 0);
  }
  let logger: Logger = createLogger(`${kind}-server`);
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  let conf;
  try {
    conf = loadDbServerConfig(kind, confFile);
  } catch (err) {
    process.stderr.write(`${program}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  logger = createLogger(`${kind}-server`, { level: process.env['SWIFTLET_LOG_LEVEL'] ?? conf.logLevel });
  const running = await startDbServer(kind, confFile, { logger, conf });
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await running.stop();
    logger.flush?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
