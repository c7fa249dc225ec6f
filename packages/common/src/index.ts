export * from './errors.js';
export * from './config.js';
export * from './logger.js';
export * from './timestamp.js';
export * from './swift-conf.js';
export * from './durable.js';
export * from './backend-client.js';
export * from './healthcheck.js';
export { superviseWorkers } from './workers.js';
