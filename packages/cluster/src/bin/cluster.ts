/**
 * `swiftlet-cluster run`: the local all-in-one cluster behind `make run`. Everything lives under
 * ./var (or --dir), kept between runs; `make clean-data` removes it. Ctrl-C / SIGTERM stops every
 * process it started.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Cluster, DEFAULT_USER, type ClusterUser } from '../cluster.js';

const DEFAULT_S3_PORT = 8080;
const DEFAULT_PORT_BASE = 6300;

function fail(message: string): never {
  process.stderr.write(`swiftlet-cluster: ${message}\n`);
  process.exit(1);
}

function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`${name} must be a TCP port number (was "${raw}")`);
  return n;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

function usersFromEnv(): ClusterUser[] {
  const users: ClusterUser[] = [
    {
      accessKey: process.env['SWIFTLET_ACCESS_KEY'] || DEFAULT_USER.accessKey,
      secretKey: process.env['SWIFTLET_SECRET_KEY'] || DEFAULT_USER.secretKey,
      account: DEFAULT_USER.account,
    },
  ];
  const altKey = process.env['SWIFTLET_ALT_ACCESS_KEY'];
  const altSecret = process.env['SWIFTLET_ALT_SECRET_KEY'];
  if (altKey && altSecret) users.push({ accessKey: altKey, secretKey: altSecret, account: 'AUTH_alt' });
  return users;
}

async function run(dir: string, processPerNode: boolean): Promise<void> {
  const pidFile = join(dir, 'cluster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
      fail(`a cluster is already running from ${dir} (pid ${pid}); stop it with Ctrl-C in its terminal or: kill ${pid}`);
    }
  }
  const s3Port = envPort('SWIFTLET_S3_PORT', DEFAULT_S3_PORT);
  const portBase = envPort('SWIFTLET_PORT_BASE', DEFAULT_PORT_BASE);
  const layoutFile = join(dir, 'cluster.json');
  if (existsSync(layoutFile)) {
    // Storage ports are written into the rings; a different base needs a fresh cluster.
    const saved = JSON.parse(readFileSync(layoutFile, 'utf8')) as { nodes: { ports: { object: number } }[]; s3Port: number };
    const savedBase = (saved.nodes[0]?.ports.object ?? portBase + 10) - 10;
    if (savedBase !== portBase) {
      fail(`${dir} was created with SWIFTLET_PORT_BASE=${savedBase}; use that, or remove it with: make clean-data`);
    }
    if (saved.s3Port !== s3Port) {
      saved.s3Port = s3Port;
      await writeFile(layoutFile, JSON.stringify(saved, null, 2) + '\n');
    }
  }
  const users = usersFromEnv();
  const cluster = await Cluster.prepare({ dir, s3Port, portBase, users, processPerNode });
  const ports = [cluster.s3Port, ...cluster.nodes.flatMap((n) => Object.values(n.ports))];
  for (const port of ports) {
    if (!(await portFree(port))) {
      const hint = port === cluster.s3Port ? 'set SWIFTLET_S3_PORT to another port' : 'set SWIFTLET_PORT_BASE (and run make clean-data)';
      fail(`port ${port} on 127.0.0.1 is already in use; ${hint}`);
    }
  }
  await writeFile(pidFile, `${process.pid}\n`);
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: stopping the cluster...\n`);
    await cluster.stop();
    await rm(pidFile, { force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  try {
    await cluster.start();
  } catch (err) {
    await rm(pidFile, { force: true });
    fail(`could not start the cluster: ${(err as Error).message} (logs in ${join(dir, 'log')})`);
  }
  const u = users[0] as ClusterUser;
  const lines = [
    `Swiftlet is running: ${cluster.nodes.length} storage nodes, ${cluster.processes.size} processes, data in ${dir}`,
    `  S3 endpoint:  ${cluster.endpoint}   (region us-east-1, path-style addressing)`,
    `  access key:   ${u.accessKey}`,
    `  secret key:   ${u.secretKey}`,
  ];
  if (users[1]) lines.push(`  second user:  ${users[1].accessKey} / ${users[1].secretKey} (account ${users[1].account})`);
  lines.push(
    `  logs:         ${join(dir, 'log')}`,
    '',
    'Try it:',
    `  AWS_ACCESS_KEY_ID=${u.accessKey} AWS_SECRET_ACCESS_KEY=${u.secretKey} AWS_DEFAULT_REGION=us-east-1 \\`,
    `    aws --endpoint-url ${cluster.endpoint} s3 mb s3://demo`,
    '',
    'Ctrl-C stops every process.',
  );
  process.stdout.write(lines.join('\n') + '\n');
  // Report a server that dies, rather than serving half a cluster silently.
  for (const proc of cluster.processes.values()) {
    void proc.exited.then((code) => {
      if (!stopping) process.stderr.write(`swiftlet-cluster: ${proc.name} (pid ${proc.pid}) exited with code ${code}; see ${join(dir, 'log', proc.name + '.log')}\n`);
    });
  }
}

const [command = 'run', ...rest] = process.argv.slice(2);
const dirFlag = rest.indexOf('--dir');
const dir = resolve(dirFlag >= 0 && rest[dirFlag + 1] ? (rest[dirFlag + 1] as string) : 'var');
// --process-per-node: one swiftlet-storage-server per node instead of three server processes.
const processPerNode = rest.includes('--process-per-node');
if (command !== 'run') fail(`unknown command "${command}" (usage: swiftlet-cluster run [--dir DIR] [--process-per-node])`);
run(dir, processPerNode).catch((err: unknown) => fail((err as Error).message));
