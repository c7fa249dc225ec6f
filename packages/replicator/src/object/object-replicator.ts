/**
 * Wires the object replicator together: config -> diskfile manager -> object strategy -> engine.
 */
import { SwiftConf, type Logger } from '@swiftlet/common';
import { DiskFileManager } from '@swiftlet/diskfile';
import { ReplicationEngine } from '../engine/replication-engine.js';
import type { ObjectReplicatorConfig } from './config.js';
import { ObjectReplicationStrategy, type ObjectJob } from './object-strategy.js';

export function createObjectReplicator(config: ObjectReplicatorConfig, logger: Logger): ReplicationEngine<ObjectJob> {
  const swiftConf = SwiftConf.load(config.swiftDir);
  const diskFiles = new DiskFileManager({
    devices: config.devices,
    mountCheck: config.mountCheck,
    reclaimAgeS: config.reclaimAgeS,
    fallocateReserve: { percent: 0 },
    swiftConf,
    logger,
  });
  const strategy = new ObjectReplicationStrategy({ config, swiftConf, diskFiles, logger });
  return new ReplicationEngine(strategy, {
    concurrency: config.concurrency,
    handoffsFirst: config.handoffsFirst,
    intervalS: config.intervalS,
    lockupTimeoutS: config.lockupTimeoutS,
    statsIntervalS: config.statsIntervalS,
    ringCheckIntervalS: config.ringCheckIntervalS,
    reconCachePath: config.reconCachePath,
    logger,
  });
}
