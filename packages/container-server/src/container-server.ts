/**
 * The container server: Swift's container backend API on one LevelDB per device.
 *
 *   PUT|HEAD|GET|POST|DELETE /<device>/<partition>/<account>/<container>
 *   PUT|DELETE               /<device>/<partition>/<account>/<container>/<object>   (object rows)
 *   POST /_container_updater/sweep                                                 (retry account updates now)
 *   POST /_db_replicate/...                                                        (see db-replication.ts)
 *   GET  /healthcheck
 */
import type { IncomingHttpHeaders } from 'node:http';
import type Koa from 'koa';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  StoreError,
  SwiftConf,
  Timestamp,
  type Logger,
} from '@swiftlet/common';
import { AccountUpdater, type AccountRingLike } from './account-updater.js';
import type { DbServerConfig } from './config.js';
import { ownerKey } from './db/keys.js';
import { listRows } from './db/listing.js';
import { newOwnerInfo, type OwnerInfo, type RowDb } from './db/row-db.js';
import { objectRowModel, type ObjectRow } from './db/row-model.js';
import { createBaseApp, type AppState } from './http/app-base.js';
import { DeviceDbs } from './http/devices.js';
import { parseBackendPath, type BackendPath } from './http/request-path.js';
import {
  CONTENT_TYPES,
  isoformat,
  listingFormat,
  listingParams,
  metadataHeaders,
  nonNegativeInt,
  requiredString,
  requiredTimestamp,
  updateMetadata,
  xmlEscape,
} from './http/request-values.js';
import { DbReplicator, replicationRoutes } from './db-replication.js';

/** Swift: a container is deleted when it is empty and its delete timestamp is newer than its put. */
export function isDeleted(info: OwnerInfo): boolean {
  return info.rows === 0 && Timestamp.parse(info.deleteTs).compare(Timestamp.parse(info.putTs)) > 0;
}

/** Swift's gen_resp_headers. */
function infoHeaders(info: OwnerInfo, deleted: boolean): Record<string, string> {
  const h: Record<string, string> = {
    'X-Backend-Timestamp': info.createdAt,
    'X-Backend-PUT-Timestamp': info.putTs,
    'X-Backend-DELETE-Timestamp': info.deleteTs,
    'X-Backend-Status-Changed-At': info.statusChangedAt,
    'X-Backend-Storage-Policy-Index': String(info.policyIndex),
  };
  if (!deleted) {
    Object.assign(h, {
      'X-Container-Object-Count': String(info.rows),
      'X-Container-Bytes-Used': String(info.bytes),
      'X-Timestamp': Timestamp.parse(info.createdAt).normal,
      'X-PUT-Timestamp': Timestamp.parse(info.putTs).normal,
      'X-Backend-Sharding-State': 'unsharded',
    });
  }
  return h;
}

export interface ContainerServer {
  app: Koa<AppState>;
  dbs: DeviceDbs<ObjectRow>;
  updater: AccountUpdater;
  replicator: DbReplicator<ObjectRow>;
  /**
   * An object row's PUT or DELETE made in-process, as the HTTP route would make it (same path
   * parsing, checks and errors): the status that route would answer. For an object server running
   * in the same process (swiftlet-storage-server), whose container updates then skip HTTP.
   */
  applyObjectUpdate(method: string, rawPath: string, headers: IncomingHttpHeaders): Promise<number>;
  close(): Promise<void>;
}

export function createContainerServer(conf: DbServerConfig, logger: Logger, opts: { accountRing?: AccountRingLike } = {}): ContainerServer {
  const swiftConf = SwiftConf.load(conf.swiftDir);
  const dbs = new DeviceDbs(conf.devices, conf.mountCheck, 'containers.db', objectRowModel, logger);
  const updater = new AccountUpdater(dbs, conf.updater, conf.swiftDir, logger.child({ component: 'container-updater' }), opts.accountRing);
  const replicator = new DbReplicator(conf, dbs, objectRowModel, logger.child({ component: 'container-replicator' }));
  replicator.onMerged = (db, owner) => updater.schedule(db, owner);
  const app = createBaseApp(logger);

  const policyIndex = (ctx: Koa.Context): number | undefined => {
    const raw = ctx.get('x-backend-storage-policy-index');
    if (raw === '') return undefined;
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || swiftConf.policy(n) === undefined) throw new BadRequestError(`Invalid X-Backend-Storage-Policy-Index ${raw}`);
    return n;
  };

  /** Sends the account update now, bounded: a failure only leaves the durable record for the sweep. */
  const updateAccountNow = async (db: RowDb<ObjectRow>, owner: string): Promise<void> => {
    await updater.update(db, owner);
  };

  app.use(replicationRoutes(replicator));

  app.use(async (ctx, next) => {
    if (ctx.path === '/_container_updater/sweep' && ctx.method === 'POST') {
      ctx.body = await updater.sweepNow();
      return;
    }
    await next();
  });

  /** An object row's PUT or DELETE (an object server's container update); its success status. */
  const updateObjectRow = async (method: string, path: BackendPath, headers: IncomingHttpHeaders): Promise<number> => {
    const db = await dbs.get(path.device);
    if (method !== 'PUT' && method !== 'DELETE') throw new StoreError(405, 'MethodNotAllowed', 'Method Not Allowed');
    const owner = ownerKey(path);
    const ts = requiredTimestamp(headers);
    const row: ObjectRow =
      method === 'PUT'
        ? {
            ts: ts.internal,
            deleted: false,
            size: nonNegativeInt(headers, 'x-size'),
            contentType: requiredString(headers, 'x-content-type'),
            etag: requiredString(headers, 'x-etag'),
            seq: 0,
          }
        : { ts: ts.internal, deleted: true, size: 0, contentType: '', etag: '', seq: 0 };
    const changed = await db.queueRow(owner, path.object as string, row, { markAccountDirty: true, missing: () => new NotFoundError() });
    if (changed) updater.schedule(db, owner);
    return method === 'PUT' ? 201 : 204;
  };

  const applyObjectUpdate = async (method: string, rawPath: string, headers: IncomingHttpHeaders): Promise<number> => {
    try {
      const path = parseBackendPath(rawPath, 5, 5);
      return await updateObjectRow(method, path, headers);
    } catch (err) {
      if (err instanceof StoreError) return err.status;
      logger.error({ err, method, path: rawPath }, 'object row update failed');
      return 500;
    }
  };

  app.use(async (ctx) => {
    const path = parseBackendPath(ctx.req.url ?? '/', 4, 5);
    if (path.container === undefined) throw new BadRequestError(`Invalid path: ${ctx.path}`);
    if (path.object !== undefined) {
      ctx.status = await updateObjectRow(ctx.method, path, ctx.req.headers);
      return;
    }
    const db = await dbs.get(path.device);
    const owner = ownerKey(path);
    const headers = ctx.req.headers;

    switch (ctx.method) {
      case 'PUT': {
        const ts = requiredTimestamp(headers);
        const requested = policyIndex(ctx);
        const created = await db.transact(owner, (tx) => {
          let created = false;
          if (tx.info === undefined) {
            tx.info = newOwnerInfo(ts.internal, requested ?? swiftConf.defaultPolicy.index);
            created = true;
          } else {
            const info = tx.info;
            const wasDeleted = isDeleted(info);
            if (wasDeleted) {
              info.policyIndex = requested ?? info.policyIndex;
            } else if (requested !== undefined && requested !== info.policyIndex) {
              throw new ConflictError('Conflict', { headers: { 'X-Backend-Storage-Policy-Index': String(info.policyIndex) } });
            }
            if (ts.compare(Timestamp.parse(info.putTs)) > 0) info.putTs = ts.internal;
            if (isDeleted(info)) throw new ConflictError('Conflict', { headers: infoHeaders(info, true) });
            if (wasDeleted) {
              info.statusChangedAt = ts.internal;
              created = true;
            }
          }
          updateMetadata(tx.info, 'container', headers, ts);
          tx.markAccountDirty();
          return created;
        });
        await updateAccountNow(db, owner);
        ctx.status = created ? 201 : 202;
        return;
      }
      case 'POST': {
        const ts = requiredTimestamp(headers);
        await db.transact(owner, (tx) => {
          if (tx.info === undefined || isDeleted(tx.info)) throw new NotFoundError();
          if (updateMetadata(tx.info, 'container', headers, ts)) tx.touch();
        });
        ctx.status = 204;
        return;
      }
      case 'DELETE': {
        const ts = requiredTimestamp(headers);
        await db.transact(owner, (tx) => {
          const info = tx.info;
          if (info === undefined) throw new NotFoundError();
          if (isDeleted(info)) throw new NotFoundError('Not Found', { headers: infoHeaders(info, true) });
          if (info.rows > 0) throw new ConflictError('Conflict', { headers: infoHeaders(info, false) });
          if (ts.compare(Timestamp.parse(info.deleteTs)) > 0) info.deleteTs = ts.internal;
          if (!isDeleted(info)) throw new ConflictError('Conflict', { headers: infoHeaders(info, false) });
          info.statusChangedAt = ts.internal;
          tx.markAccountDirty();
        });
        await updateAccountNow(db, owner);
        ctx.status = 204;
        return;
      }
      case 'HEAD':
      case 'GET': {
        const params = ctx.method === 'GET' ? listingParams(ctx.query) : undefined;
        const format = listingFormat(ctx.query, ctx.get('accept'));
        const snapshot = db.dev.snapshot();
        try {
          const info = await db.readInfo(owner, snapshot);
          if (info === undefined) throw new NotFoundError();
          if (isDeleted(info)) throw new NotFoundError('Not Found', { headers: infoHeaders(info, true) });
          ctx.set(infoHeaders(info, false));
          ctx.set(metadataHeaders(info));
          ctx.type = CONTENT_TYPES[format];
          if (params === undefined) {
            ctx.status = 204;
            return;
          }
          const entries = await listRows(db.dev, objectRowModel, owner, params, snapshot);
          if (format === 'json') {
            ctx.body = JSON.stringify(
              entries.map((e) =>
                'subdir' in e
                  ? { subdir: e.subdir }
                  : { name: e.name, hash: e.row.etag, bytes: e.row.size, content_type: e.row.contentType, last_modified: isoformat(e.row.ts) },
              ),
            );
          } else if (format === 'xml') {
            const items = entries.map((e) =>
              'subdir' in e
                ? `<subdir name="${xmlEscape(e.subdir)}"><name>${xmlEscape(e.subdir)}</name></subdir>`
                : `<object><name>${xmlEscape(e.name)}</name><hash>${xmlEscape(e.row.etag)}</hash><bytes>${e.row.size}</bytes>` +
                  `<content_type>${xmlEscape(e.row.contentType)}</content_type><last_modified>${isoformat(e.row.ts)}</last_modified></object>`,
            );
            ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<container name="${xmlEscape(path.container as string)}">${items.join('')}</container>`;
          } else if (entries.length === 0) {
            ctx.status = 204;
          } else {
            ctx.body = entries.map((e) => `${'subdir' in e ? e.subdir : e.name}\n`).join('');
          }
          ctx.type = CONTENT_TYPES[format];
          return;
        } finally {
          await snapshot.close();
        }
      }
      default:
        throw new StoreError(405, 'MethodNotAllowed', 'Method Not Allowed');
    }
  });

  return {
    app,
    dbs,
    updater,
    replicator,
    applyObjectUpdate,
    async close() {
      replicator.stop();
      await updater.stop();
      await replicator.idle();
      await dbs.close();
    },
  };
}

