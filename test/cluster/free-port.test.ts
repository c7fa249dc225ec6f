import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { freePort, startProcess } from '@swiftlet/cluster';

it('freePort gives distinct bindable ports below the ephemeral range (outgoing connections cannot take them)', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const port = await freePort();
    expect(port).toBeGreaterThan(1024);
    expect(port).toBeLessThan(low);
    ports.add(port);
    const srv = createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
  expect(ports.size).toBeGreaterThan(1);
});

it('freePort never hands out the same port twice, even before any is bound (a cluster asks for a dozen at once)', async () => {
  // 2,000 random draws from ~22,000 ports repeat one almost surely (birthday bound: ~90 pairs).
  const ports = new Set<number>();
  for (let i = 0; i < 2000; i++) ports.add(await freePort());
  expect(ports.size).toBe(2000);
});

it('startProcess fails at once, with the end of the log, when the server dies before its health check answers', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'swiftlet-start-'));
  try {
    const script = join(dir, 'dies.mjs');
    await writeFile(script, "console.error('bind EADDRINUSE 127.0.0.1:1'); process.exit(3);\n");
    const port = await freePort();
    const t0 = Date.now();
    await expect(
      startProcess({ name: 'dies', script, logFile: join(dir, 'dies.log'), healthUrl: `http://127.0.0.1:${port}/healthcheck`, startTimeoutMs: 30_000 }),
    ).rejects.toThrow(/dies exited at start \(3\); its log ends:\nbind EADDRINUSE 127\.0\.0\.1:1/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
