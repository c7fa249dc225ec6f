/**
 * The proxy server: the S3 gateway (koa) over the proxy backend, on one HTTP listener. Stopping
 * closes the listener, lets requests in flight finish (bounded), then closes the backend.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { canReleaseBuffers, ConfigFile, type Logger } from '@swiftlet/common';
import { ProxyBackend } from './backend/index.js';
import { proxyServerConfig, unknownProxyKeys, type ProxyServerConfig } from './config.js';
import { CredentialStore } from './s3/credentials.js';
import { ProxyMetrics } from './s3/metrics.js';
import { createS3App } from './s3/s3-app.js';
import { MultipartJanitor, removeUpload } from './s3/multipart/index.js';

export interface RunningProxyServer {
  config: ProxyServerConfig;
  server: http.Server;
  port: number;
  stop(graceMs?: number): Promise<void>;
}

export async function startProxyServer(configFile: string, opts: { logger: Logger }): Promise<RunningProxyServer> {
  const conf = ConfigFile.load(configFile);
  const config = proxyServerConfig(conf);
  const logger = opts.logger;
  const unknown = unknownProxyKeys(conf);
  if (unknown.length > 0) logger.warn({ file: configFile, unknown }, 'unknown config keys ignored');
  if (!canReleaseBuffers()) logger.warn('body chunks wait for the garbage collector (this Node cannot detach an ArrayBuffer): more memory under large transfers');
  const credentials = new CredentialStore(config.s3.credentialsFile, logger.child({ component: 's3-credentials' }), config.s3.credentialsReloadIntervalS);
  const backend = new ProxyBackend({ swiftDir: config.swiftDir, logger: logger.child({ component: 'proxy-backend' }), conf: config.backend });
  const janitor = new MultipartJanitor({ storage: backend, config: config.s3, logger: logger.child({ component: 's3-multipart-janitor' }) }, removeUpload);
  janitor.start();
  const metrics = new ProxyMetrics();
  const backendStats = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(backend.stats())) if (typeof v === 'number') out[k] = v;
    return out;
  };
  const app = createS3App({ config: config.s3, storage: backend, credentials, logger, janitor, metrics, backendStats });
  const handler = app.callback();
  const server = http.createServer(handler);
  // `Expect: 100-continue` requests reach the app before any body is sent; it answers 100 once the
  // signature checks out, so a refused upload never transfers its body.
  server.on('checkContinue', handler);
  server.keepAliveTimeout = config.keepAliveTimeoutS * 1000;
  // Uploads of several GiB take long: no limit on a whole request, only on silence within it
  // (Swift's client_timeout); a silent socket is destroyed, which aborts the upload.
  server.requestTimeout = 0;
  server.timeout = config.clientTimeoutS * 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.bindPort, config.bindIp, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info(
    { bindIp: config.bindIp, port, swiftDir: config.swiftDir, region: config.s3.region, storageDomains: config.s3.storageDomains, users: credentials.size, backend: config.backend },
    'proxy server started',
  );
  let stopping: Promise<void> | undefined;
  return {
    config,
    server,
    port,
    stop(graceMs = 10_000) {
      stopping ??= (async () => {
        credentials.close();
        await janitor.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        await closed;
        clearTimeout(timer);
        await backend.close();
        logger.info('proxy server stopped');
      })();
      return stopping;
    },
  };
}
