export * from './backend/index.js';
export * from './s3/index.js';
export { startProxyServer } from './server.js';
export type { RunningProxyServer } from './server.js';
export { proxyServerConfig } from './config.js';
export type { ProxyServerConfig } from './config.js';
