/**
 * swiftlet-object-replicator CONF [--once] [--devices d1,d2] [--partitions 3,7] [--policies 0,1]
 *
 * Reads the node's object-server config ([DEFAULT] + [object-replicator]); runs passes forever
 * (one every `interval` s) or, with --once, a single pass. SIGTERM/SIGINT stop it cleanly: running
 * pushes are aborted, nothing half-written is left on the peers (their receiver discards
 * incomplete tars), exit 0.
 */
import { parseArgs } from 'node:util';
import { ConfigFile, createLogger } from '@swiftlet/common';
import { objectReplicatorConfig } from '../object/config.js';
import { createObjectReplicator } from '../object/object-replicator.js';

const USAGE = 'usage: swiftlet-object-replicator CONF [--once] [--devices d1,d2] [--partitions 3,7] [--policies 0,1]\n';

function intList(raw: string | undefined, what: string): number[] | undefined {
  if (raw === undefined) return undefined;
  const out = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const s of out) {
    if (!/^\d+$/.test(s)) throw new Error(`--${what} must be a comma-separated list of integers (was "${raw}")`);
  }
  return out.map(Number);
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        once: { type: 'boolean', default: false },
        devices: { type: 'string', short: 'd' },
        partitions: { type: 'string', short: 'p' },
        policies: { type: 'string', short: 'i' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const confFile = args.positionals[0];
  if (!confFile || args.positionals.length > 1) {
    process.stderr.write(USAGE);
    return 2;
  }
  let config;
  let overrides;
  try {
    config = objectReplicatorConfig(ConfigFile.load(confFile));
    overrides = {
      devices: args.values.devices?.split(',').map((s) => s.trim()).filter((s) => s !== ''),
      partitions: intList(args.values.partitions, 'partitions'),
      policies: intList(args.values.policies, 'policies'),
    };
  } catch (err) {
    process.stderr.write(`swiftlet-object-replicator: ${(err as Error).message}\n`);
    return 2;
  }
  const logger = createLogger('object-replicator', { level: config.logLevel });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  const engine = createObjectReplicator(config, logger);
  const stop = new AbortController();
  const onSignal = (sig: string): void => {
    logger.info({ signal: sig }, 'stopping object replicator');
    stop.abort();
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  logger.info({ config: { ...config }, once: args.values.once, overrides }, 'object replicator starting');
  if (args.values.once) {
    const summary = await engine.runPass(overrides, stop.signal);
    logger.flush?.();
    return summary.aborted === 'collect-failed' ? 1 : 0;
  }
  await engine.runForever(stop.signal);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`swiftlet-object-replicator: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
