import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { ConfigFile, createLogger, superviseWorkers } from '@swiftlet/common';
import { proxyServerConfig } from '../config.js';
import { startProxyServer, type RunningProxyServer } from '../server.js';

const USAGE = 'usage: swiftlet-proxy-server CONF   (e.g. /etc/swiftlet/proxy-server.conf)';

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const file = argv.find((a) => !a.startsWith('-'));
  if (!file) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  let workers: number;
  let level: string;
  try {
    const config = proxyServerConfig(ConfigFile.load(file));
    workers = config.workers === 0 ? availableParallelism() : config.workers;
    level = config.logLevel;
  } catch (err) {
    process.stderr.write(`swiftlet-proxy-server: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger('proxy-server', { level });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });

  if (workers > 1 && cluster.isPrimary) {
    // Several processes share the listening socket (node:cluster); the primary only supervises.
    const stopWorkers = superviseWorkers(workers, logger);
    const stopAll = (): void => void stopWorkers().then(() => process.exit(0));
    process.once('SIGTERM', stopAll);
    process.once('SIGINT', stopAll);
    return;
  }

  let running: RunningProxyServer;
  try {
    running = await startProxyServer(file, { logger });
  } catch (err) {
    logger.fatal({ err }, 'cannot start');
    process.exit(1);
  }
  const shutdown = (signal: string): void => {
    logger.info({ signal }, 'signal received');
    void running.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
