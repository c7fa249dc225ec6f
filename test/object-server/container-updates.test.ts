/**
 * Container updates from a real swiftlet-object-server to a real swiftlet-container-server, the
 * async pendings written when a container replica is unreachable, and the swiftlet-object-updater
 * delivering them once the container server is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { binPath, freePort, iniText, startProcess, type ServerProcess } from '@swiftlet/cluster';
import { RingData } from '@swiftlet/ring';
import { asyncPendingPath, writeAsyncPending } from '@swiftlet/object-server';
import { SwiftConf, Timestamp } from '@swiftlet/common';
import { listFiles, put, removeDir, request, startObjectServer, ts, type TestServer } from './helpers.js';

let os: TestServer;
let cport: number;
let container: ServerProcess | undefined;
let containerConf: string;

async function startContainerServer(): Promise<ServerProcess> {
  return startProcess({
    name: 'container-server',
    script: binPath('container-server'),
    args: [containerConf],
    logFile: join(os.dir, 'container-server.log'),
    healthUrl: `http://127.0.0.1:${cport}/healthcheck`,
  });
}

async function listing(cont: string): Promise<{ name: string; bytes: number; hash: string; content_type: string }[]> {
  const r = await request(cport, 'GET', `/sdc/0/a/${cont}?format=json`);
  expect(r.status).toBe(200);
  return JSON.parse(r.text) as { name: string; bytes: number; hash: string; content_type: string }[];
}

async function runUpdater(extra: Record<string, string | number> = {}): Promise<Record<string, unknown>> {
  const conf = join(os.dir, 'updater.conf');
  await writeFile(
    conf,
    iniText({
      DEFAULT: { devices: os.devices, mount_check: 'false', swift_dir: os.swiftDir },
      'object-updater': { concurrency: 4, node_timeout: 2, conn_timeout: 0.5, slowdown: 0, ...extra },
    }),
  );
  const logFile = join(os.dir, `updater-${Date.now()}.log`);
  const p = await startProcess({ name: 'object-updater', script: binPath('object-updater'), args: [conf, '--once'], logFile });
  const code = await p.exited;
  expect(code).toBe(0);
  const lines = (await readFile(logFile, 'utf8')).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const pass = lines.find((l) => l['pass'] === 'object-updater');
  expect(pass).toBeDefined();
  return pass as Record<string, unknown>;
}

const pendings = async (): Promise<string[]> => (await listFiles(join(os.devices, 'sda'))).filter((f) => f.startsWith('async_pending'));

beforeAll(async () => {
  os = await startObjectServer();
  cport = await freePort();
  await mkdir(join(os.dir, 'csrv', 'sdc'), { recursive: true });
  containerConf = join(os.dir, 'container-server.conf');
  await writeFile(
    containerConf,
    iniText({ DEFAULT: { devices: join(os.dir, 'csrv'), mount_check: 'false', bind_ip: '127.0.0.1', bind_port: cport, swift_dir: os.swiftDir } }),
  );
  container = await startContainerServer();
  expect((await request(cport, 'PUT', '/sdc/0/a/c', { 'X-Timestamp': ts() })).status).toBe(201);
});

afterAll(async () => {
  await container?.stop();
  await os?.stop();
  if (os) await removeDir(os.dir);
});

const updateHeaders = (hosts: string[]): Record<string, string> => ({
  'X-Container-Host': hosts.join(','),
  'X-Container-Device': hosts.map(() => 'sdc').join(','),
  'X-Container-Partition': '0',
});

describe('container updates', () => {
  it('PUT and DELETE update the container listing before answering', async () => {
    const r = await put(os.port, '/sda/1/a/c/listed', 'hello', { ...updateHeaders([`127.0.0.1:${cport}`]), 'Content-Type': 'text/plain' });
    expect(r.status).toBe(201);
    const rows = await listing('c');
    expect(rows.find((x) => x.name === 'listed')).toMatchObject({ bytes: 5, hash: '5d41402abc4b2a76b9719d911017c592', content_type: 'text/plain' });
    const d = await request(os.port, 'DELETE', '/sda/1/a/c/listed', { 'X-Timestamp': ts(), ...updateHeaders([`127.0.0.1:${cport}`]) });
    expect(d.status).toBe(204);
    expect((await listing('c')).find((x) => x.name === 'listed')).toBeUndefined();
    expect(await pendings()).toEqual([]);
  });

  it('an unreachable container replica: still 201, an async pending naming only that replica', async () => {
    const dead = await freePort();
    const t = ts();
    const r = await put(os.port, '/sda/1/a/c/half', 'abc', { 'X-Timestamp': t, ...updateHeaders([`127.0.0.1:${cport}`, `127.0.0.1:${dead}`]) });
    expect(r.status).toBe(201);
    expect((await listing('c')).map((x) => x.name)).toContain('half');
    const files = await pendings();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^async_pending/[0-9a-f]{3}/[0-9a-f]{32}-${t.replace('.', '\\.')}$`));
    const pending = JSON.parse(await readFile(join(os.devices, 'sda', files[0] as string), 'utf8')) as Record<string, unknown>;
    expect(pending).toMatchObject({
      op: 'PUT',
      account: 'a',
      container: 'c',
      obj: 'half',
      policyIndex: 0,
      nodes: [{ ip: '127.0.0.1', port: dead, device: 'sdc', partition: 0 }],
      headers: { 'X-Timestamp': t, 'X-Size': '3', 'X-Etag': '900150983cd24fb0d6963f7d28e17f72', 'X-Backend-Storage-Policy-Index': '0' },
    });
    expect(JSON.parse((await request(os.port, 'GET', '/recon/async')).text)).toEqual({ async_pending: 1 });
    // The dead replica stays dead: the updater keeps the pending and counts a failure.
    const pass = await runUpdater();
    expect(pass).toMatchObject({ found: 1, successes: 0, failures: 1 });
    expect(await pendings()).toHaveLength(1);
    await removeDir(join(os.devices, 'sda', 'async_pending'));
  });

  it('container server down: PUTs still succeed; the updater delivers the newest update once it is back and drops the older one', async () => {
    await container?.stop();
    const h = updateHeaders([`127.0.0.1:${cport}`]);
    expect((await put(os.port, '/sda/1/a/c/later', 'one', h)).status).toBe(201);
    expect((await put(os.port, '/sda/1/a/c/later', 'three', h)).status).toBe(201);
    expect((await request(os.port, 'DELETE', '/sda/1/a/c/gone-later', { 'X-Timestamp': ts(), ...h })).status).toBe(404);
    expect(await pendings()).toHaveLength(3);
    // A pending for a container that does not exist: the container server answers 404, kept.
    expect((await put(os.port, '/sda/1/a/nocont/o', 'x', h)).status).toBe(201);
    expect(await pendings()).toHaveLength(4);

    container = await startContainerServer();
    const pass = await runUpdater();
    expect(pass).toMatchObject({ found: 4, successes: 2, failures: 1, unlinks: 1 });
    const rows = await listing('c');
    expect(rows.find((x) => x.name === 'later')).toMatchObject({ bytes: 5 });
    const left = await pendings();
    expect(left).toHaveLength(1);
    expect(JSON.parse(await readFile(join(os.devices, 'sda', left[0] as string), 'utf8'))).toMatchObject({ container: 'nocont' });
    // Once the container exists, the next pass delivers it.
    expect((await request(cport, 'PUT', '/sdc/0/a/nocont', { 'X-Timestamp': ts() })).status).toBe(201);
    expect(await runUpdater()).toMatchObject({ found: 1, successes: 1, failures: 0 });
    expect(await pendings()).toEqual([]);
    expect((await listing('nocont')).map((x) => x.name)).toEqual(['o']);
  });

  it('a pending that names no container nodes is delivered to the replicas of container.ring.gz', async () => {
    // Part power 0: every container lives in partition 0 of the one device (the container server's).
    const dev = { id: 0, region: 1, zone: 1, ip: '127.0.0.1', port: cport, replicationIp: '127.0.0.1', replicationPort: cport, device: 'sdc', weight: 1, meta: '' };
    await new RingData({ devs: [dev], replica2part2devId: [new Uint16Array(1)], partShift: 32 }).save(join(os.swiftDir, 'container.ring.gz'));
    const swiftConf = SwiftConf.load(os.swiftDir);
    const hash = swiftConf.hashPath('a', 'c', 'from-ring').hex;
    const t = Timestamp.parse(ts());
    const file = asyncPendingPath(join(os.devices, 'sda'), 0, hash, t);
    await writeAsyncPending(file, {
      version: 1, op: 'PUT', account: 'a', container: 'c', obj: 'from-ring', policyIndex: 0, nodes: [],
      headers: { 'X-Timestamp': t.internal, 'X-Size': '7', 'X-Etag': 'd41d8cd98f00b204e9800998ecf8427e', 'X-Content-Type': 'text/plain', 'X-Backend-Storage-Policy-Index': '0' },
    });
    expect(await runUpdater()).toMatchObject({ found: 1, successes: 1 });
    expect((await listing('c')).find((x) => x.name === 'from-ring')).toMatchObject({ bytes: 7 });
    expect(await pendings()).toEqual([]);
  });
});
