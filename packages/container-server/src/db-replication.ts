// placeholder replaced below
import type Koa from 'koa';
import type { Logger } from '@swiftlet/common';
import type { DbServerConfig } from './config.js';
import type { DeviceDbs } from './http/devices.js';
import type { AnyRow, RowModel } from './db/row-model.js';
import type { AppState } from './http/app-base.js';

export class DbReplicator<R extends AnyRow> {
  constructor(
    readonly conf: DbServerConfig,
    readonly dbs: DeviceDbs<R>,
    readonly model: RowModel<R>,
    readonly logger: Logger,
  ) {}
  start(): void {}
  stop(): void {}
  async idle(): Promise<void> {}
}

export function replicationRoutes<R extends AnyRow>(_r: DbReplicator<R>): Koa.Middleware<AppState> {
  return async (_ctx, next) => next();
}
