/**
 * swiftlet-object-updater CONF [--once]: delivers async pendings every `interval` seconds
 * ([object-updater] section), or one pass with --once.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigFile, createLogger } from '@swiftlet/common';
import { objectUpdaterConfig, type ObjectUpdaterConfig } from '../config.js';
import { RingCache } from '../rings.js';
import { ObjectUpdater } from '../updater.js';
import { isMountPoint } from '../mount.js';

const USAGE = 'usage: swiftlet-object-updater CONF [--once]';
const argv = process.argv.slice(2);
const file = argv.find((a) => !a.startsWith('-'));
if (!file) {
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}
let config: ObjectUpdaterConfig;
try {
  config = objectUpdaterConfig(ConfigFile.load(file));
} catch (err) {
  process.stderr.write(`swiftlet-object-updater: ${(err as Error).message}\n`);
  process.exit(2);
}
const logger = createLogger('object-updater', { level: config.logLevel });
process.on('unhandledRejection', (err) => {
  logger.fatal({ err }, 'unhandled rejection');
  process.exit(1);
});
const usable = async (device: string): Promise<boolean> => {
  const path = join(config.devices, device);
  if (config.mountCheck) return isMountPoint(path);
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
};
const updater = new ObjectUpdater(config, new RingCache(config.swiftDir), logger, usable);

if (argv.includes('--once')) {
  await updater.runOnce();
} else {
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let running = true;
  const stop = (signal: string): void => {
    logger.info({ signal }, 'stopping after the current pass');
    running = false;
    updater.stop();
    clearTimeout(timer);
    wake?.();
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  logger.info({ interval: config.intervalS, devices: config.devices }, 'object updater started');
  while (running) {
    const started = Date.now();
    await updater.runOnce();
    const waitMs = Math.max(0, config.intervalS * 1000 - (Date.now() - started));
    if (!running) break;
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, waitMs);
    });
  }
  logger.info('object updater stopped');
}
