// The ring's public face. ring-data.ts / ring.ts: the .ring.gz format and lookups;
// builder/: the RingBuilder (rebalance) and its builder file.
export * from './ring-data.js';
export * from './ring.js';
export * from './builder/index.js';
