export * from './config.js';
export { createObjectServerApp, newTransactionId, type ObjectServerApp, type ObjectServerDeps } from './app.js';
export { startObjectServer, type RunningObjectServer } from './server.js';
export type { LocalContainerServer } from './container-update.js';
export { ObjectUpdater, type UpdaterPassStats } from './updater.js';
export {
  type AsyncPending,
  type ContainerNode,
  asyncPendingDirName,
  asyncPendingPath,
  readAsyncPending,
  writeAsyncPending,
  countAsyncPendings,
} from './async-pending.js';
export { parseObjectPath, type ObjectPath } from './request-path.js';
