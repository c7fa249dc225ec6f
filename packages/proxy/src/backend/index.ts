// The proxy's data path (quorum writes, reads with fallback, error limiting), used by ../s3.
export { ProxyBackend, BackendFailure } from './proxy-backend.js';
export type {
  BackendResponse,
  ListingQuery,
  Listing,
  ObjectRow,
  ContainerRow,
  SubdirRow,
  RingLike,
  ProxyBackendOptions,
} from './proxy-backend.js';
export { DEFAULT_PROXY_BACKEND_CONFIG, proxyBackendConfigFromSection } from './config.js';
export type { ProxyBackendConfig } from './config.js';
export type { BackendMetrics } from './context.js';
export { quorumSize, haveQuorum, bestResponseIndex } from './quorum.js';
export { ErrorLimiter, nodeKey } from './error-limiter.js';
export { NodeIter, NodeTimings, sortPrimaries } from './node-iter.js';
export { ReadResolver } from './read-resolver.js';
