// Starts a Swiftlet all-in-one cluster shaped like the Swift anchor (4 nodes, 3 replicas, part
// power 10, no background daemons) under <dir>, writes <dir>/ready.json {endpoint, accessKey,
// secretKey, region, proxyPid}, and stops every process it started on SIGTERM/SIGINT.
//   node swiftlet-cluster.mjs <dir>
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from '../../packages/cluster/dist/index.js';

const dir = process.argv[2];
const user = { accessKey: 'bench', secretKey: 'bench-secret', account: 'AUTH_bench' };
// BENCH_PROXY_WORKERS / BENCH_OBJECT_WORKERS: processes per server (`workers`), 1 when unset
// (with several proxy workers, run.sh's proxy RSS figures are the primary's only).
const workers = (v) => ({ DEFAULT: { workers: Number(v ?? 1) } });
const extraConf = { proxy: workers(process.env.BENCH_PROXY_WORKERS), object: workers(process.env.BENCH_OBJECT_WORKERS) };
// BENCH_CONSISTENT_READS=0: the proxy's consistent_reads off (Swift's first answer), for A/B runs.
if (process.env.BENCH_CONSISTENT_READS === '0') extraConf.proxy['proxy-server'] = { consistent_reads: false };
// BENCH_PROCESS_PER_NODE=1: one swiftlet-storage-server per node instead of three server processes.
const processPerNode = process.env.BENCH_PROCESS_PER_NODE === '1';
const cluster = await startCluster({ dir, nodes: 4, replicas: 3, partPower: 10, daemons: false, users: [user], extraConf, processPerNode });
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
