/**
 * The object server's koa application: access log + metrics + transaction id (outermost), the
 * single place where errors become status codes, then the routes.
 */
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { BadRequestError, SERVER_PID_HEADER, serverPid, StoreError, type SwiftConf } from '@swiftlet/common';
import type { DiskFileManager } from '@swiftlet/diskfile';
import Koa, { type Context, type Next } from 'koa';
import type { Logger } from 'pino';
import type { ObjectServerConfig } from './config.js';
import type { LocalContainerServer } from './container-update.js';
import { ObjectServerMetrics } from './metrics.js';
import { ObjectController } from './object-controller.js';
import { Recon } from './recon.js';
import { ReplicationController } from './replication-controller.js';
import { RingCache } from './rings.js';

export interface ObjectServerDeps {
  config: ObjectServerConfig;
  swiftConf: SwiftConf;
  diskfiles: DiskFileManager;
  logger: Logger;
  /** This process's container server, when it has one (swiftlet-storage-server). */
  localContainer?: LocalContainerServer;
}

export interface ObjectServerApp {
  app: Koa;
  objects: ObjectController;
  metrics: ObjectServerMetrics;
  /** Requests being answered right now (drained on shutdown). */
  inFlight: () => number;
}

/** Swift's transaction id form: `tx` + 21 hex digits + `-` + hex epoch seconds. */
export function newTransactionId(): string {
  // randomUUID draws from a cached entropy pool (randomBytes per request cost ~12 µs of CPU).
  return `tx${randomUUID().replace(/-/g, '').slice(0, 21)}-${Math.floor(Date.now() / 1000).toString(16).padStart(10, '0')}`;
}

export function createObjectServerApp(deps: ObjectServerDeps): ObjectServerApp {
  const { config, swiftConf, diskfiles, logger } = deps;
  const accessLog = logger.child({ log: 'access' });
  const metrics = new ObjectServerMetrics();
  const objects = new ObjectController(config, swiftConf, diskfiles, logger, () => metrics.asyncPendingsWritten.inc(), deps.localContainer);
  const replication = new ReplicationController(config, swiftConf, diskfiles, new RingCache(config.swiftDir));
  const recon = new Recon(config, diskfiles, logger);
  let inFlight = 0;

  const app = new Koa();
  app.silent = true;
  app.on('error', (err: Error) => logger.error({ err }, 'unhandled application error'));

  // Access log, metrics, X-Trans-Id: one JSON line per request, written when the answer is done.
  app.use(async (ctx: Context, next: Next) => {
    const start = process.hrtime.bigint();
    const txIdHeader = ctx.get('x-trans-id');
    const txId = txIdHeader !== '' ? txIdHeader : newTransactionId();
    ctx.state['txId'] = txId;
    ctx.set('X-Trans-Id', txId);
    inFlight += 1;
    // The line is written once both the handler is done (its status is final) and the answer
    // is finished or the connection closed (a client gone mid-body closes before the handler ends).
    let pending = 2;
    const done = (): void => {
      pending -= 1;
      if (pending !== 0) return;
      inFlight -= 1;
      const clientGone = !ctx.res.writableFinished && (ctx.req.destroyed || ctx.res.destroyed);
      const status = ctx.state['status499'] ? 499 : clientGone && ctx.status < 400 && !ctx.state['streamError'] ? 499 : ctx.status;
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.observe(ctx.method, status, seconds);
      if (!config.logRequests) return;
      accessLog.info({
        method: ctx.method,
        path: ctx.path,
        status,
        bytes: (ctx.state['bytes'] as number | undefined) ?? Number(ctx.res.getHeader('content-length') ?? 0),
        durationMs: Math.round(seconds * 1e6) / 1000,
        txId,
        remote: ctx.req.socket.remoteAddress,
        ...(ctx.state['streamError'] ? { streamError: ctx.state['streamError'] } : {}),
      });
    };
    let answered = false;
    const onAnswered = (): void => {
      if (answered) return;
      answered = true;
      done();
    };
    ctx.res.once('finish', onAnswered);
    ctx.res.once('close', onAnswered);
    try {
      await next();
    } finally {
      // koa writes the body after the middleware chain returns; let it set the final status.
      setImmediate(done);
    }
  });

  // Errors -> status codes, in one place. A message a client may see is one line.
  app.use(async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof StoreError) {
        if (err.status === 499) ctx.state['status499'] = true;
        if (err.status >= 500 && err.status !== 507 && err.status !== 503) logger.error({ err, path: ctx.path, txId: ctx.state['txId'] }, 'request failed');
        else if (err.status !== 404) logger.info({ status: err.status, reason: err.message, path: ctx.path, method: ctx.method, txId: ctx.state['txId'] }, 'request refused');
        if (ctx.headerSent || !ctx.writable) {
          ctx.status = err.status;
          return;
        }
        // A handler may have taken over the response (respond = false) before failing.
        ctx.respond = true;
        ctx.status = err.status;
        for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
        ctx.body = (err.expose ? err.message : 'Internal Server Error').split('\n')[0] + '\n';
        return;
      }
      logger.error({ err, path: ctx.path, method: ctx.method, txId: ctx.state['txId'] }, 'request failed');
      if (ctx.headerSent || !ctx.writable) {
        ctx.res.destroy();
        return;
      }
      ctx.respond = true;
      ctx.status = 500;
      ctx.body = 'Internal Server Error\n';
    }
  });

  const router = new Router();
  router.get('/healthcheck', (ctx) => {
    ctx.set(SERVER_PID_HEADER, serverPid());
    ctx.type = 'text/plain';
    ctx.body = 'OK';
  });
  router.get('/recon/:what', async (ctx) => {
    ctx.body = await recon.get(ctx.params['what'] as string);
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  router.post('/_replicate/:device', (ctx) => replication.replicateMany(ctx, ctx.params['device'] as string));
  router.post('/_replicate/:device/:partition', (ctx) => replication.replicate(ctx, ctx.params['device'] as string, ctx.params['partition'] as string));
  router.post('/_replicate/:device/:partition/:suffixes', (ctx) =>
    replication.replicate(ctx, ctx.params['device'] as string, ctx.params['partition'] as string, ctx.params['suffixes']),
  );
  router.post('/_sync/:device/:partition/missing', (ctx) => replication.missing(ctx, ctx.params['device'] as string, ctx.params['partition'] as string));
  router.put('/_sync/:device/:partition', (ctx) => replication.receive(ctx, ctx.params['device'] as string, ctx.params['partition'] as string));
  app.use(router.routes());
  // Anything the router did not take is an object request (or a malformed special path).
  app.use(async (ctx: Context) => {
    if (/^\/_(replicate|sync)(\/|$)/.test(ctx.path)) {
      throw new BadRequestError(`Invalid replication request: ${ctx.method} ${ctx.path}`);
    }
    if (ctx.path === '/healthcheck' || ctx.path === '/metrics' || /^\/recon\/[^/]*$/.test(ctx.path)) {
      throw new StoreError(405, 'MethodNotAllowed', `Method ${ctx.method} not allowed on ${ctx.path}`);
    }
    await objects.handle(ctx);
  });

  return { app, objects, metrics, inFlight: () => inFlight };
}
