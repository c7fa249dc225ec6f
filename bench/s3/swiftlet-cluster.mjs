// Starts a Swiftlet all-in-one cluster shaped like the Swift anchor (4 nodes, 3 replicas, part
// power 10, no background daemons) under <dir>, writes <dir>/ready.json {endpoint, accessKey,
// secretKey, region, proxyPid}, and stops every process it started on SIGTERM/SIGINT.
//   node swiftlet-cluster.mjs <dir>
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '../../packages/cluster/dist/index.js';

const dir = process.argv[2];
const user = { accessKey: 'bench', secretKey: 'bench-secret', account: 'AUTH_bench' };
const cluster = await startCluster({ dir, nodes: 4, replicas: 3, partPower: 10, daemons: false, users: [user] });
const proxy = cluster.processes.get('proxy-server');
writeFileSync(
  join(dir, 'ready.json'),
  JSON.stringify({ endpoint: `http://127.0.0.1:${cluster.s3Port}`, accessKey: user.accessKey, secretKey: user.secretKey, region: 'us-east-1', proxyPid: proxy?.pid }),
);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await cluster.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => undefined, 1 << 30);
