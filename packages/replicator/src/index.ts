// The replication pass engine (generic, shared with the container/account replicators) and the
// object replicator built on it.
export * from './engine/replication-engine.js';
export * from './engine/replication-stats.js';
export * from './engine/recon-cache.js';
