export * from './process.js';
export * from './cluster.js';
export * from './runtime-env.js';
