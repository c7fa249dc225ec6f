// Account and container servers on LevelDB: listings, rows, container -> account updates and
// database replication. The bins are src/bin/*.ts.
export * from './config.js';
export * from './db/keys.js';
export * from './db/row-model.js';
export * from './db/row-db.js';
export * from './db/listing.js';
export * from './db/device-db.js';
export { createContainerServer, isDeleted, type ContainerServer } from './container-server.js';
export { createAccountServer, isAccountDeleted, type AccountServer } from './account-server.js';
export { AccountUpdater, type SweepStats, type AccountRingLike } from './account-updater.js';
export { DbReplicator } from './db-replication.js';
export { runDbServer, startDbServer, type RunningServer } from './server-main.js';
