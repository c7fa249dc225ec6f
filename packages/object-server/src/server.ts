/**
 * The object server process: config -> DiskFileManager -> koa app -> node:http server with our
 * own `checkContinue` handling (so that 400/409/412/507 answer before a body is sent), and a
 * graceful stop (stop accepting, finish in-flight requests and late container updates, close).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { canReleaseBuffers, ConfigFile, createLogger, SwiftConf } from '@swiftlet/common';
import { DiskFileManager, nativeAddonUnavailable, removeStaleTmp } from '@swiftlet/diskfile';
import type { Logger } from 'pino';
import { createObjectServerApp, type ObjectServerApp } from './app.js';
import { objectServerConfig, type ObjectServerConfig } from './config.js';
import { EXPECTS_CONTINUE } from './object-controller.js';
import type { LocalContainerServer } from './container-update.js';

export interface RunningObjectServer {
  readonly config: ObjectServerConfig;
  readonly server: http.Server;
  readonly app: ObjectServerApp;
  readonly port: number;
  stop(graceMs?: number): Promise<void>;
}

export async function startObjectServer(
  configFile: string,
  opts: { logger?: Logger; localContainer?: LocalContainerServer } = {},
): Promise<RunningObjectServer> {
  const conf = ConfigFile.load(configFile);
  const config = objectServerConfig(conf);
  const logger = opts.logger ?? createLogger('object-server', { level: config.logLevel });
  const swiftConf = SwiftConf.load(config.swiftDir);
  const diskfiles = new DiskFileManager({
    devices: config.devices,
    mountCheck: config.mountCheck,
    reclaimAgeS: config.reclaimAgeS,
    fallocateReserve: config.fallocateReserve,
    readChecksum: config.readChecksum,
    keepCacheSize: config.keepCacheSize,
    swiftConf,
    logger: logger.child({ module: 'diskfile' }),
  });
  const noNative = nativeAddonUnavailable();
  if (noNative !== undefined) {
    logger.warn(`large bodies stay in the page cache (keep_cache_size has no effect) and each write ends with one thread-pool job per call: ${noNative}`);
  }
  if (!canReleaseBuffers()) logger.warn('body chunks wait for the garbage collector (this Node cannot detach an ArrayBuffer): more memory under large transfers');
  // Temporary files of writers that died (a crash, a kill) are removed before serving.
  await removeStaleTmp(config.devices, logger).catch((err: unknown) => logger.error({ err }, 'could not sweep stale tmp files'));
  const app = createObjectServerApp({ config, swiftConf, diskfiles, logger, ...(opts.localContainer ? { localContainer: opts.localContainer } : {}) });
  const handler = app.app.callback();

  const server = http.createServer(
    // Uploads are bounded by client_timeout / max_upload_time, not by Node's whole-request limit.
    { requestTimeout: 0, keepAliveTimeout: 5_000 },
    handler,
  );
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    (req as IncomingMessage & { [EXPECTS_CONTINUE]?: boolean })[EXPECTS_CONTINUE] = true;
    void handler(req, res);
  });
  // Malformed requests that Node's parser refuses (e.g. a non-numeric Content-Length) still get
  // a one-line reason, as Swift gives.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const reason =
      err.code === 'HPE_INVALID_CONTENT_LENGTH' || err.code === 'HPE_UNEXPECTED_CONTENT_LENGTH'
        ? 'Invalid Content-Length'
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? 'Request headers too large'
          : `Bad request (${err.code ?? err.message})`;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    logger.info({ log: 'access', status: Number(status.slice(0, 3)), reason, remote: socket.remoteAddress }, 'malformed request refused');
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: ${reason.length + 1}\r\nConnection: close\r\n\r\n${reason}\n`);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.bindPort, config.bindIp, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.bindPort;
  logger.info({ bindIp: config.bindIp, port, devices: config.devices, mountCheck: config.mountCheck, swiftDir: config.swiftDir }, 'object server listening');

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 10_000): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ inFlight: app.inFlight() }, 'stopping: no new connections, draining');
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      while ((app.inFlight() > 0 || app.objects.lateUpdates.size > 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        server.closeIdleConnections();
      }
      if (app.inFlight() > 0) logger.warn({ inFlight: app.inFlight() }, 'stop: grace period over, closing connections');
      server.closeAllConnections();
      await closed;
      logger.info('object server stopped');
    })();
    return stopping;
  };
  return { config, server, app, port, stop };
}
