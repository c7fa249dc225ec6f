/**
 * swiftlet-storage-server [--object CONF] [--container CONF] [--account CONF]
 *
 * The servers of one storage node in one process, each from the config file its own daemon reads
 * (same keys, same ports). Swift runs each as a separate daemon; here one Node runtime serves
 * them all. Why: every process a request wakes costs context switches, and each runtime costs its
 * memory; in the bench's 4-node cluster, one process per node instead of three gave 12-18 % more
 * small S3 PUTs (bench/RESULTS.md, S3 gateway).
 *
 * The object server's container updates addressed to this process's container server are applied
 * in-process, without an HTTP request (@swiftlet/object-server LocalContainerServer); the proxy
 * pairs each object replica with the container replica of its own device where it can.
 *
 * With the object server's `workers` > 1, this process runs the container and account servers and
 * supervises the object server's workers, which run the object server alone (the LevelDB of a
 * device belongs to one process).
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ConfigFile, createLogger, localAddresses, superviseWorkers } from '@swiftlet/common';
import { loadDbServerConfig, startDbServer, type DbServerConfig, type RunningServer } from '@swiftlet/container-server';
import { objectServerConfig, startObjectServer, type LocalContainerServer } from '@swiftlet/object-server';

export const USAGE = 'usage: swiftlet-storage-server [--object CONF] [--container CONF] [--account CONF]   (at least one)';

interface Stoppable {
  stop(): Promise<void>;
}

function fail(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

/**
 * The container server of this process, for the object server's container updates addressed to
 * it (@swiftlet/object-server LocalContainerServer): same address as a ring device's ip:port.
 * Not with object server workers: they are other processes.
 */
function inProcessContainer(server: RunningServer): LocalContainerServer | undefined {
  const apply = server.applyObjectUpdate;
  if (apply === undefined) return undefined;
  const addresses = localAddresses(server.bindIp);
  return { serves: (node) => node.port === server.bindPort && addresses.has(node.ip), apply };
}

export async function runStorageServer(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        object: { type: 'string' },
        container: { type: 'string' },
        account: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    fail(2, `${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { object, container, account } = values;
  if (object === undefined && container === undefined && account === undefined) fail(2, USAGE);

  // Every config is checked before anything starts.
  let workers = 1;
  let level = 'info';
  let containerConf: DbServerConfig | undefined;
  let accountConf: DbServerConfig | undefined;
  try {
    if (object !== undefined) {
      const conf = objectServerConfig(ConfigFile.load(object));
      workers = conf.workers === 0 ? availableParallelism() : conf.workers;
      level = conf.logLevel;
    }
    if (container !== undefined) containerConf = loadDbServerConfig('container', container);
    if (account !== undefined) accountConf = loadDbServerConfig('account', account);
  } catch (err) {
    fail(2, `swiftlet-storage-server: ${(err as Error).message}`);
  }
  const logger = createLogger('storage-server', { level });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });

  const running: Stoppable[] = [];
  try {
    if (cluster.isWorker && object !== undefined) {
      // A forked worker of the object server: that server alone.
      running.push(await startObjectServer(object, { logger: createLogger('object-server', { level }) }));
    } else {
      const containerServer = container !== undefined ? await startDbServer('container', container, { conf: containerConf }) : undefined;
      if (containerServer) running.push(containerServer);
      if (account !== undefined) running.push(await startDbServer('account', account, { conf: accountConf }));
      if (object !== undefined && workers > 1) running.push({ stop: superviseWorkers(workers, logger) });
      else if (object !== undefined) {
        const localContainer = containerServer && inProcessContainer(containerServer);
        running.push(await startObjectServer(object, { logger: createLogger('object-server', { level }), ...(localContainer ? { localContainer } : {}) }));
      }
      logger.info({ object, container, account, objectWorkers: object !== undefined && workers > 1 ? workers : 0 }, 'storage server running');
    }
  } catch (err) {
    logger.fatal({ err }, 'cannot start');
    process.exit(1);
  }

  // The object server first (its late container updates still reach this node's container
  // server), then the database servers.
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    void (async () => {
      for (const server of running.reverse()) {
        await server.stop().catch((err: unknown) => logger.error({ err }, 'a server did not stop cleanly'));
      }
      logger.flush?.();
      process.exit(0);
    })();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
