/**
 * The newcomer's path: `make run` on a fresh copy of the repository, an S3 round trip with the
 * credentials it prints, then SIGTERM, after which none of the processes it started is left.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { REPO_ROOT, freePort, waitFor } from '@swiftlet/cluster';

function descendants(pid: number): number[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' });
  const children = new Map<number, number[]>();
  for (const line of out.trim().split('\n')) {
    const [p, pp] = line.trim().split(/\s+/).map(Number) as [number, number];
    children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const all: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      all.push(c);
      walk(c);
    }
  };
  walk(pid);
  return all;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function freePortBase(): Promise<number> {
  // Four nodes use base+10..base+42; pick a base whose ports are free right now, below the
  // kernel's ephemeral range (32768 and up here), where the other tests' OS-chosen ports and
  // every outgoing connection's local port live: a base there could be taken between this check
  // and the servers' bind.
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 120) * 100;
    const { createServer } = await import('node:net');
    const free = async (port: number): Promise<boolean> =>
      new Promise((res) => {
        const s = createServer();
        s.once('error', () => res(false));
        s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
      });
    let ok = true;
    for (let n = 1; n <= 4 && ok; n++) for (let k = 0; k < 3 && ok; k++) ok = await free(base + 10 * n + k);
    if (ok) return base;
  }
  throw new Error('no free port range found');
}

describe('make run on a fresh copy', () => {
  let work: string | undefined;
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('starts a cluster, serves S3 with the printed credentials, and stops cleanly on SIGTERM', async () => {
    work = await mkdtemp(join(tmpdir(), 'swiftlet-make-run-'));
    const copy = join(work, 'swiftlet');
    // A fresh copy of the committed tree plus the working tree's changes: what a newcomer clones.
    execFileSync('git', ['clone', '-q', '--no-hardlinks', REPO_ROOT, copy]);
    execFileSync('sh', ['-c', `cd "${REPO_ROOT}" && git ls-files -z --modified --others --exclude-standard | xargs -0 -r cp --parents -t "${copy}"`]);
    const s3Port = await freePort();
    const portBase = await freePortBase();
    const child = spawn('make', ['run'], {
      cwd: copy,
      env: { ...process.env, SWIFTLET_S3_PORT: String(s3Port), SWIFTLET_PORT_BASE: String(portBase), npm_config_prefer_offline: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    const banner = 'Ctrl-C stops every process';
    try {
      // make exiting before its banner (a port taken, a build error) fails the test at once, with
      // what make printed, instead of at the banner's deadline.
      await waitFor(() => output.includes(banner) || child.exitCode !== null || child.signalCode !== null, {
        timeoutMs: 600_000,
        intervalMs: 500,
        what: 'make run to print its banner',
      });
      if (!output.includes(banner)) throw new Error(`make run exited (${child.exitCode ?? child.signalCode}) before its banner:\n${output.slice(-3000)}`);
      const endpoint = /S3 endpoint:\s+(\S+)/.exec(output)?.[1];
      const accessKeyId = /access key:\s+(\S+)/.exec(output)?.[1];
      const secretAccessKey = /secret key:\s+(\S+)/.exec(output)?.[1];
      expect(endpoint).toBe(`http://127.0.0.1:${s3Port}`);
      expect(accessKeyId && secretAccessKey).toBeTruthy();
      const s3 = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: accessKeyId as string, secretAccessKey: secretAccessKey as string },
      });
      await s3.send(new CreateBucketCommand({ Bucket: 'make-run' }));
      await s3.send(new PutObjectCommand({ Bucket: 'make-run', Key: 'hello.txt', Body: 'hello from make run' }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'make-run', Key: 'hello.txt' }));
      expect(await got.Body?.transformToString()).toBe('hello from make run');
      s3.destroy();

      const started = descendants(child.pid as number);
      expect(started.length).toBeGreaterThan(10);
      // SIGTERM to the launcher alone (make's child); it must stop every server it started.
      const launcher = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' })
        .trim()
        .split(/\s+/)
        .map(Number)[0] as number;
      process.kill(launcher, 'SIGTERM');
      await exited;
      await waitFor(() => started.every((pid) => !alive(pid)), { timeoutMs: 20_000, what: 'every cluster process to exit' });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      for (const pid of descendants(child.pid as number)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  }, 900_000);
});
