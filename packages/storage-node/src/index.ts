// One process per storage node: the object, container and account servers of a node in one
// Node process (beyond Swift, which runs each as its own daemon). The bin is src/bin/storage-server.ts.
export { runStorageServer, USAGE } from './storage-server.js';
