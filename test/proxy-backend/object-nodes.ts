/**
 * A small object tier for the proxy backend tests: five real object servers (one device each) on
 * 127.0.0.1, an object ring of 16 partitions with 3 replicas (part p on devices p, p+1, p+2 mod 5,
 * so every partition has two handoffs), and a ProxyBackend in this process.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binPath, freePort, iniText, startProcess, type ServerProcess } from '@swiftlet/cluster';
import { createLogger, silentLogger } from '@swiftlet/common';
import { ProxyBackend, type ProxyBackendConfig } from '@swiftlet/proxy';
import { Ring, RingData, type RingDevice } from '@swiftlet/ring';

export const SERVERS = 5;
const PART_POWER = 4;

export interface ObjectTier {
  root: string;
  swiftDir: string;
  ring: Ring;
  servers: ServerProcess[];
  devices: RingDevice[];
  /** The device folder of device id i. */
  deviceDir(i: number): string;
  backend(conf?: Partial<ProxyBackendConfig>): ProxyBackend;
  /** Starts object server i again after it was stopped. */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** Three replicas over three servers of `kind`, every partition on every server. */
async function dbRing(swiftDir: string, kind: 'container' | 'account', ports: number[]): Promise<RingDevice[]> {
  const devs: RingDevice[] = ports.map((port, i) => ({
    id: i, region: 1, zone: i + 1, ip: '127.0.0.1', port,
    replicationIp: '127.0.0.1', replicationPort: port, device: `${kind[0]}db${i}`, weight: 100, meta: '',
  }));
  const parts = 1 << 2;
  const rows = [0, 1, 2].map((r) => Uint16Array.from({ length: parts }, (_, p) => (p + r) % devs.length));
  await new RingData({ devs, replica2part2devId: rows, partShift: 32 - 2 }).save(join(swiftDir, `${kind}.ring.gz`));
  return devs;
}

/**
 * `withDb`: also three container and three account servers (and their rings), so that the backend
 * checks container existence and object servers update listings.
 */
export async function startObjectTier(opts: { withDb?: boolean } = {}): Promise<ObjectTier> {
  const root = await mkdtemp(join(tmpdir(), 'swiftlet-proxy-backend-'));
  const swiftDir = join(root, 'etc');
  await mkdir(swiftDir);
  await writeFile(join(swiftDir, 'swift.conf'), iniText({ 'swift-hash': { swift_hash_path_suffix: 'proxy-backend-test' } }));
  const devices: RingDevice[] = [];
  for (let i = 0; i < SERVERS; i++) {
    const port = await freePort();
    devices.push({
      id: i, region: 1, zone: i + 1, ip: '127.0.0.1', port,
      replicationIp: '127.0.0.1', replicationPort: port, device: `sdb${i}`, weight: 100, meta: '',
    });
  }
  const parts = 1 << PART_POWER;
  const rows = [0, 1, 2].map((r) => Uint16Array.from({ length: parts }, (_, p) => (p + r) % SERVERS));
  await new RingData({ devs: devices, replica2part2devId: rows, partShift: 32 - PART_POWER }).save(join(swiftDir, 'object.ring.gz'));
  const deviceDir = (i: number): string => join(root, `node${i}`, `sdb${i}`);
  const servers: ServerProcess[] = [];
  const backends: ProxyBackend[] = [];
  const dbServers: ServerProcess[] = [];
  const start = async (i: number): Promise<void> => {
    const d = devices[i] as RingDevice;
    const conf = join(root, `object-server-${i}.conf`);
    servers[i] = await startProcess({
      name: `object-server-${i}`,
      script: binPath('object-server'),
      args: [conf],
      logFile: join(root, `object-server-${i}.log`),
      healthUrl: `http://127.0.0.1:${d.port}/healthcheck`,
    });
  };
  try {
    await Promise.all(
      devices.map(async (d, i) => {
        await mkdir(deviceDir(i), { recursive: true });
        await writeFile(
          join(root, `object-server-${i}.conf`),
          iniText({
            DEFAULT: { devices: join(root, `node${i}`), mount_check: false, bind_ip: '127.0.0.1', bind_port: d.port, swift_dir: swiftDir, log_level: 'warn' },
            'object-server': {},
          }),
        );
        await start(i);
      }),
    );
    if (opts.withDb) {
      for (const kind of ['container', 'account'] as const) {
        const ports = [await freePort(), await freePort(), await freePort()];
        const devs = await dbRing(swiftDir, kind, ports);
        await Promise.all(
          devs.map(async (d, i) => {
            const devRoot = join(root, `${kind}${i}`);
            await mkdir(join(devRoot, d.device), { recursive: true });
            const conf = join(root, `${kind}-server-${i}.conf`);
            await writeFile(
              conf,
              iniText({ DEFAULT: { devices: devRoot, mount_check: false, bind_ip: '127.0.0.1', bind_port: d.port, swift_dir: swiftDir, log_level: 'warn' } }),
            );
            dbServers.push(
              await startProcess({
                name: `${kind}-server-${i}`,
                script: binPath(`${kind}-server`),
                args: [conf],
                logFile: join(root, `${kind}-server-${i}.log`),
                healthUrl: `http://127.0.0.1:${d.port}/healthcheck`,
              }),
            );
          }),
        );
      }
    }
  } catch (err) {
    await Promise.all([...servers, ...dbServers].filter(Boolean).map((s) => s.stop()));
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    root,
    swiftDir,
    ring: Ring.forKind(swiftDir, 'object'),
    servers,
    devices,
    deviceDir,
    backend(conf = {}) {
      const b = new ProxyBackend({
        swiftDir,
        logger: process.env['PB_DEBUG'] ? createLogger('proxy-backend-test', { level: 'debug' }) : silentLogger(),
        conf: {
          nodeTimeoutS: 2, connTimeoutS: 0.5, errorSuppressionLimit: 10, errorSuppressionIntervalS: 60,
          sortingMethod: 'shuffle', postQuorumTimeoutS: 0.5, checkContainerExistence: opts.withDb === true, ...conf,
        },
      });
      backends.push(b);
      return b;
    },
    restart: start,
    async stop() {
      await Promise.all(backends.map((b) => b.close()));
      await Promise.all([...servers, ...dbServers].map((s) => s.stop()));
      await rm(root, { recursive: true, force: true });
    },
  };
}
