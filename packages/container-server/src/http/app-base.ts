/**
 * What the container and account servers share at the HTTP layer: the access log (one pino line
 * per request, with its transaction id), the one place where errors become status codes, and
 * `GET /healthcheck`.
 */
import { randomBytes } from 'node:crypto';
import Koa from 'koa';
import { SERVER_PID_HEADER, serverPid, StoreError, type Logger } from '@swiftlet/common';

export interface AppState {
  txId: string;
}

// Transaction ids: a random per-process prefix and a counter (random bytes per request cost CPU).
const TX_PREFIX = `tx${randomBytes(6).toString('hex')}`;
let txCounter = 0;

export function createBaseApp(logger: Logger): Koa<AppState> {
  const app = new Koa<AppState>();
  app.proxy = false;
  app.silent = true;
  app.use(async (ctx, next) => {
    const started = process.hrtime.bigint();
    const txId = ctx.get('x-trans-id') || `${TX_PREFIX}-${(++txCounter).toString(16)}`;
    ctx.state.txId = txId;
    ctx.set('X-Trans-Id', txId);
    try {
      await next();
    } catch (err) {
      if (err instanceof StoreError) {
        ctx.status = err.status;
        for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
        ctx.type = 'text/plain';
        ctx.body = err.expose ? `${err.message}\n` : `${err.code}\n`;
        if (err.status >= 500) logger.error({ err, txId }, 'request failed');
      } else {
        logger.error({ err, txId, method: ctx.method, url: ctx.url }, 'unexpected error');
        ctx.status = 500;
        ctx.type = 'text/plain';
        ctx.body = 'Internal Server Error\n';
      }
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info(
        { txId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms * 1000) / 1000, remote: ctx.request.ip },
        'request',
      );
    }
  });
  app.use(async (ctx, next) => {
    if (ctx.path === '/healthcheck' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.set(SERVER_PID_HEADER, serverPid());
      ctx.type = 'text/plain';
      ctx.body = 'OK';
      return;
    }
    await next();
  });
  return app;
}
