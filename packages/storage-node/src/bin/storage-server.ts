/**
 * swiftlet-storage-server [--object CONF] [--container CONF] [--account CONF]: a storage node's
 * servers in one process (src/storage-server.ts says when and why). Set UV_THREADPOOL_SIZE as for
 * the object server (the systemd unit sets 32).
 */
import { runStorageServer } from '../storage-server.js';

await runStorageServer(process.argv.slice(2));
