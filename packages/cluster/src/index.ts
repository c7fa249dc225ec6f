export * from './process.js';
export * from './cluster.js';
