/**
 * swiftlet-object-server CONF: Swift's object server backend API.
 * fsync and file I/O run on libuv's thread pool; its default of 4 threads would cap concurrent
 * durable PUTs at 4, so it is widened before anything touches the pool.
 */
process.env['UV_THREADPOOL_SIZE'] ??= '32';
const { main } = await import('./object-server-main.js');
await main(process.argv.slice(2));
