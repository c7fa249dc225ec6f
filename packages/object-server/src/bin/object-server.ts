/**
 * swiftlet-object-server CONF: Swift's object server backend API.
 * fsync and file I/O run on libuv's thread pool, 4 threads unless UV_THREADPOOL_SIZE is set in
 * the environment before Node starts (an ES module cannot widen it: the loader has already
 * started the pool). The systemd unit sets 32.
 */
import { main } from './object-server-main.js';

await main(process.argv.slice(2));
