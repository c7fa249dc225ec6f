/**
 * The daemon life cycle shared by the container and account server bins: load the config, build
 * the app, listen, and on SIGTERM/SIGINT stop accepting, drain, close every LevelDB, exit 0.
 */
import { createServer, type Server } from 'node:http';
import { createLogger, type Logger } from '@swiftlet/common';
import { ConfigFile } from '@swiftlet/common';
import { loadDbServerConfig, unknownConfigKeys, type ServerKind } from './config.js';
import { createAccountServer } from './account-server.js';
import { createContainerServer } from './container-server.js';

export interface RunningServer {
  server: Server;
  logger: Logger;
  stop(): Promise<void>;
}

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
  const built = kind === 'container' ? createContainerServer(conf, logger) : createAccountServer(conf, logger);
  const server = createServer(built.app.callback());
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(conf.bindPort, conf.bindIp, () => resolve());
  });
  logger.info({ conf }, `${program} listening on ${conf.bindIp}:${conf.bindPort}`);
  const unknown = unknownConfigKeys(kind, ConfigFile.load(confFile));
  if (unknown.length > 0) logger.warn({ keys: unknown, file: confFile }, 'unknown config keys ignored');
  if ('updater' in built) built.updater.start();
  built.replicator.start();

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await closed;
    await built.close();
    logger.info('stopped');
    logger.flush?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
