/**
 * The account server: Swift's account backend API on one LevelDB per device.
 *
 *   PUT|HEAD|GET|POST|DELETE /<device>/<partition>/<account>
 *   PUT /<device>/<partition>/<account>/<container>   container row (X-Put-Timestamp,
 *       X-Delete-Timestamp, X-Object-Count, X-Bytes-Used, X-Backend-Storage-Policy-Index)
 *   POST /_db_replicate/...                             (see db-replication.ts)
 *   GET  /healthcheck
 */
import type Koa from 'koa';
import { BadRequestError, NotFoundError, StoreError, SwiftConf, Timestamp, type Logger } from '@swiftlet/common';
import type { DbServerConfig } from './config.js';
import { ownerKey } from './db/keys.js';
import { listRows } from './db/listing.js';
import { newOwnerInfo, type OwnerInfo } from './db/row-db.js';
import { ZERO_TS, containerRowModel, type ContainerRow } from './db/row-model.js';
import { createBaseApp, type AppState } from './http/app-base.js';
import { DeviceDbs } from './http/devices.js';
import { parseBackendPath } from './http/request-path.js';
import {
  CONTENT_TYPES,
  isoformat,
  listingFormat,
  listingParams,
  metadataHeaders,
  nonNegativeInt,
  optionalTimestamp,
  requiredTimestamp,
  updateMetadata,
  xmlEscape,
} from './http/request-values.js';
import { DbReplicator, replicationRoutes } from './db-replication.js';

/** Swift: an account is deleted when it has no containers and its delete timestamp is newer than its put. */
export function isAccountDeleted(info: OwnerInfo): boolean {
  return info.rows === 0 && Timestamp.parse(info.deleteTs).compare(Timestamp.parse(info.putTs)) > 0;
}

function accountHeaders(info: OwnerInfo, swiftConf: SwiftConf): Record<string, string> {
  const h: Record<string, string> = {
    'X-Account-Container-Count': String(info.rows),
    'X-Account-Object-Count': String(info.objects),
    'X-Account-Bytes-Used': String(info.bytes),
    'X-Timestamp': Timestamp.parse(info.createdAt).normal,
    'X-PUT-Timestamp': Timestamp.parse(info.putTs).normal,
    'X-Backend-Timestamp': info.createdAt,
    'X-Backend-PUT-Timestamp': info.putTs,
    'X-Backend-DELETE-Timestamp': info.deleteTs,
    'X-Backend-Status-Changed-At': info.statusChangedAt,
  };
  for (const [idx, st] of Object.entries(info.policies)) {
    const name = swiftConf.policy(Number(idx))?.name;
    if (name === undefined || st.rows === 0) continue;
    h[`X-Account-Storage-Policy-${name}-Container-Count`] = String(st.rows);
    h[`X-Account-Storage-Policy-${name}-Object-Count`] = String(st.objects);
    h[`X-Account-Storage-Policy-${name}-Bytes-Used`] = String(st.bytes);
  }
  return h;
}

function deletedHeaders(info: OwnerInfo): Record<string, string> {
  return {
    'X-Account-Status': 'Deleted',
    'X-Backend-Timestamp': info.createdAt,
    'X-Backend-PUT-Timestamp': info.putTs,
    'X-Backend-DELETE-Timestamp': info.deleteTs,
    'X-Backend-Status-Changed-At': info.statusChangedAt,
  };
}

export interface AccountServer {
  app: Koa<AppState>;
  dbs: DeviceDbs<ContainerRow>;
  replicator: DbReplicator<ContainerRow>;
  close(): Promise<void>;
}

export function createAccountServer(conf: DbServerConfig, logger: Logger): AccountServer {
  const swiftConf = SwiftConf.load(conf.swiftDir);
  const dbs = new DeviceDbs(conf.devices, conf.mountCheck, 'accounts.db', containerRowModel, logger);
  const replicator = new DbReplicator(conf, dbs, containerRowModel, logger.child({ component: 'account-replicator' }));
  const app = createBaseApp(logger);
  app.use(replicationRoutes(replicator));

  app.use(async (ctx) => {
    const path = parseBackendPath(ctx.req.url ?? '/', 3, 4);
    const db = await dbs.get(path.device);
    const owner = ownerKey({ part: path.part, account: path.account });
    const headers = ctx.req.headers;

    if (path.container !== undefined) {
      if (ctx.method !== 'PUT') throw new StoreError(405, 'MethodNotAllowed', 'Method Not Allowed');
      const putTs = optionalTimestamp(headers, 'x-put-timestamp') ?? new Timestamp(0);
      const deleteTs = optionalTimestamp(headers, 'x-delete-timestamp') ?? new Timestamp(0);
      if (putTs.ticks === 0 && deleteTs.ticks === 0) throw new BadRequestError('Missing X-Put-Timestamp');
      const statsTs = optionalTimestamp(headers, 'x-timestamp') ?? Timestamp.max(putTs, deleteTs);
      const policyRaw = ctx.get('x-backend-storage-policy-index');
      if (policyRaw !== '' && !/^\d+$/.test(policyRaw)) throw new BadRequestError(`Invalid X-Backend-Storage-Policy-Index ${policyRaw}`);
      const row: ContainerRow = {
        putTs: putTs.internal,
        deleteTs: deleteTs.internal,
        objects: nonNegativeInt(headers, 'x-object-count', 0),
        bytes: nonNegativeInt(headers, 'x-bytes-used', 0),
        policyIndex: policyRaw === '' ? 0 : Number(policyRaw),
        statsTs: statsTs.internal,
        deleted: false,
        seq: 0,
      };
      const container = path.container;
      await db.transact(owner, async (tx) => {
        if (tx.info === undefined) {
          if (!path.account.startsWith(conf.autoCreateAccountPrefix) || conf.autoCreateAccountPrefix === '') throw new NotFoundError();
          tx.info = newOwnerInfo(Timestamp.now().internal, 0);
          tx.touch();
        }
        if (isAccountDeleted(tx.info) && ctx.get('x-account-override-deleted').toLowerCase() !== 'yes') {
          throw new NotFoundError('Not Found', { headers: deletedHeaders(tx.info) });
        }
        await tx.mergeRow(container, row);
      });
      ctx.status = deleteTs.compare(putTs) > 0 ? 204 : 201;
      return;
    }

    switch (ctx.method) {
      case 'PUT': {
        const ts = requiredTimestamp(headers);
        const created = await db.transact(owner, (tx) => {
          let created = false;
          if (tx.info === undefined) {
            tx.info = newOwnerInfo(ts.internal, 0);
            created = true;
          } else {
            const wasDeleted = isAccountDeleted(tx.info);
            if (ts.compare(Timestamp.parse(tx.info.putTs)) > 0) tx.info.putTs = ts.internal;
            if (isAccountDeleted(tx.info)) throw new StoreError(409, 'Conflict', 'Conflict', { headers: deletedHeaders(tx.info) });
            if (wasDeleted) {
              tx.info.statusChangedAt = ts.internal;
              created = true;
            }
          }
          updateMetadata(tx.info, 'account', headers, ts);
          tx.touch();
          return created;
        });
        ctx.status = created ? 201 : 202;
        return;
      }
      case 'POST': {
        const ts = requiredTimestamp(headers);
        await db.transact(owner, (tx) => {
          if (tx.info === undefined || isAccountDeleted(tx.info)) throw new NotFoundError();
          if (updateMetadata(tx.info, 'account', headers, ts)) tx.touch();
        });
        ctx.status = 204;
        return;
      }
      case 'DELETE': {
        const ts = requiredTimestamp(headers);
        await db.transact(owner, (tx) => {
          const info = tx.info;
          if (info === undefined) throw new NotFoundError();
          if (isAccountDeleted(info)) throw new NotFoundError('Not Found', { headers: deletedHeaders(info) });
          // Like Swift, an account is deleted with its rows in place; the reaper empties it later.
          if (ts.compare(Timestamp.parse(info.deleteTs)) > 0) info.deleteTs = ts.internal;
          if (info.deleteTs !== ZERO_TS && Timestamp.parse(info.deleteTs).compare(Timestamp.parse(info.putTs)) <= 0) {
            throw new StoreError(409, 'Conflict', 'Conflict');
          }
          info.statusChangedAt = ts.internal;
          tx.touch();
        });
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
          if (isAccountDeleted(info)) throw new NotFoundError('Not Found', { headers: deletedHeaders(info) });
          ctx.set(accountHeaders(info, swiftConf));
          ctx.set(metadataHeaders(info));
          if (params === undefined) {
            ctx.status = 204;
            ctx.type = CONTENT_TYPES[format];
            return;
          }
          const entries = await listRows(db.dev, containerRowModel, owner, params, snapshot);
          if (format === 'json') {
            ctx.body = JSON.stringify(
              entries.map((e) =>
                'subdir' in e
                  ? { subdir: e.subdir }
                  : { name: e.name, count: e.row.objects, bytes: e.row.bytes, last_modified: isoformat(e.row.putTs) },
              ),
            );
          } else if (format === 'xml') {
            const items = entries.map((e) =>
              'subdir' in e
                ? `<subdir name="${xmlEscape(e.subdir)}"><name>${xmlEscape(e.subdir)}</name></subdir>`
                : `<container><name>${xmlEscape(e.name)}</name><count>${e.row.objects}</count><bytes>${e.row.bytes}</bytes>` +
                  `<last_modified>${isoformat(e.row.putTs)}</last_modified></container>`,
            );
            ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<account name="${xmlEscape(path.account)}">${items.join('')}</account>`;
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
    replicator,
    async close() {
      replicator.stop();
      await replicator.idle();
      await dbs.close();
    },
  };
}
