/**
 * swiftlet-proxy-server CONF: the S3 gateway and proxy data path (koa on bind_port, 8080).
 */
const { main } = await import('./proxy-server-main.js');
await main(process.argv.slice(2));
