// The replication pass engine (generic, shared with the container/account replicators) and the
// object replicator built on it.
export * from './engine/replication-engine.js';
export * from './engine/replication-stats.js';
export * from './engine/recon-cache.js';
export * from './object/config.js';
export { ObjectReplicationStrategy, type ObjectJob, type ObjectStrategyOptions } from './object/object-strategy.js';
export { createObjectReplicator } from './object/object-replicator.js';
export { PeerClient, PeerError, PeerUnavailableError, isPushableFile, type PeerTarget, type PeerTimeouts } from './object/peer-client.js';
export { BandwidthLimiter } from './object/bandwidth-limit.js';
export { localAddresses, isLocalDevice } from './object/local-ips.js';
