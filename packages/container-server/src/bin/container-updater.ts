/**
 * swiftlet-container-updater CONF: asks the running container server (bind_ip:bind_port of CONF)
 * to retry every pending container -> account update now, and prints the sweep's figures.
 *
 * The updater itself runs inside the container server (a sweep every [container-updater]
 * interval), because the server process owns the LevelDB of each device and LevelDB allows one
 * process per database. Exit 0 when every pending update was delivered, 1 when some are still
 * pending (they stay recorded and are retried), 2 on a usage or connection error.
 */
import { backendRequest, readBody } from '@swiftlet/common';
import { loadDbServerConfig } from '../config.js';

const args = process.argv.slice(2);
const confFile = args.find((a) => !a.startsWith('-'));
if (confFile === undefined || args.includes('-h') || args.includes('--help')) {
  process.stderr.write('usage: swiftlet-container-updater CONF\n');
  process.exit(confFile === undefined ? 2 : 0);
}
try {
  const conf = loadDbServerConfig('container', confFile);
  const ip = conf.bindIp === '0.0.0.0' ? '127.0.0.1' : conf.bindIp === '::' ? '::1' : conf.bindIp;
  const res = await backendRequest(
    { ip, port: conf.bindPort },
    { method: 'POST', path: '/_container_updater/sweep', connTimeoutMs: conf.connTimeoutS * 1000, nodeTimeoutMs: 600_000 },
  );
  const body = (await readBody(res)).toString('utf8');
  if (res.statusCode !== 200) {
    process.stderr.write(`swiftlet-container-updater: container server answered ${res.statusCode}: ${body}\n`);
    process.exit(2);
  }
  const stats = JSON.parse(body) as { attempted: number; succeeded: number; failed: number };
  process.stdout.write(`${JSON.stringify(stats)}\n`);
  process.exit(stats.failed > 0 ? 1 : 0);
} catch (err) {
  process.stderr.write(`swiftlet-container-updater: ${(err as Error).message}\n`);
  process.exit(2);
}
