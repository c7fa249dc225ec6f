import cluster from 'node:cluster';
import { ConfigFile, createLogger, superviseWorkers } from '@swiftlet/common';
import { objectServerConfig } from '../config.js';
import { startObjectServer } from '../server.js';

const USAGE = 'usage: swiftlet-object-server CONF   (e.g. /etc/swiftlet/object-server.conf)';

export async function main(argv: string[]): Promise<void> {
  const file = argv.find((a) => !a.startsWith('-'));
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!file) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  let workers: number;
  let level: string;
  try {
    const config = objectServerConfig(ConfigFile.load(file));
    workers = config.workers === 0 ? (await import('node:os')).availableParallelism() : config.workers;
    level = config.logLevel;
  } catch (err) {
    process.stderr.write(`swiftlet-object-server: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger('object-server', { level });
  if (process.env['UV_THREADPOOL_SIZE'] === undefined) {
    logger.info('UV_THREADPOOL_SIZE is not set: 4 I/O threads; set it (e.g. 32) in the environment for many concurrent durable writes');
  }
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

  let running;
  try {
    running = await startObjectServer(file, { logger });
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
