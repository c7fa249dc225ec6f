/**
 * Several processes write into the same partition while others read and rewrite its hashes (and
 * one writer is killed mid-flight); afterwards the cache must equal a full rehash from disk.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { hashSuffix } from './hash-cache.js';
import { transpilePackages } from './test-fixtures/transpile.js';
import { makeTree, type TestTree } from './test-helpers.js';

const fixtures = fileURLToPath(new URL('./test-fixtures/', import.meta.url));
const PART = 3;

let tree: TestTree;
const children: ChildProcess[] = [];
let cacheDir: string;
beforeEach(async () => {
  tree = await makeTree();
  cacheDir = join(tree.root, 'ts-cache');
  await mkdir(cacheDir);
  await transpilePackages(cacheDir, ['common', 'diskfile']);
});
afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.length = 0;
  await tree.cleanup();
});

function start(mode: 'writer' | 'hasher', durationMs: number, minOps: number): { child: ChildProcess; done: Promise<{ code: number | null; out: string; err: string }> } {
  const child = spawn(
    process.execPath,
    ['--import', pathToFileURL(join(fixtures, 'ts-register.mjs')).href, join(fixtures, 'stress-child.ts'), mode, tree.devices, String(PART), String(durationMs), String(minOps)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWIFTLET_TS_CACHE: cacheDir } },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
  return { child, done };
}

it('never loses an invalidation with writer and hasher processes racing (and a writer killed mid-flight)', async () => {
  const durationMs = 2000;
  const runs = [
    start('writer', durationMs, 40),
    start('writer', durationMs, 40),
    start('writer', durationMs, 40),
    start('hasher', durationMs, 20),
    start('hasher', durationMs, 20),
  ];
  const victim = start('writer', durationMs, 1000);
  const victimStarted = new Promise<void>((resolve) => victim.child.stdout?.on('data', () => resolve()));
  const timeout = setTimeout(() => victim.child.kill('SIGKILL'), 30_000);
  // Hash from this process too while the victim gets going, then kill it wherever it is (maybe
  // holding the partition lock, maybe between link and its second journal entry).
  let victimRunning = false;
  void victimStarted.then(() => setTimeout(() => (victimRunning = true), 300));
  while (!victimRunning && victim.child.exitCode === null) {
    await tree.mgr.getHashes('sda', PART, 0).catch((err: unknown) => {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    });
  }
  clearTimeout(timeout);
  victim.child.kill('SIGKILL');
  await victim.done;
  const results = await Promise.all(runs.map((r) => r.done));
  for (const r of results) {
    expect(r.err, r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out.split('\n').at(-2) ?? '{}').ops).toBeGreaterThanOrEqual(20);
  }
  // Start-up cleanup of the victim's leftovers, then the cache must agree with the disk.
  await tree.mgr.removeStaleTmp();
  const cached = await tree.mgr.getHashes('sda', PART, 0);
  const partDir = tree.mgr.partitionPath('sda', 0, PART);
  const fromDisk: Record<string, string> = {};
  for (const s of (await readdir(partDir)).filter((n) => /^[0-9a-f]{3}$/.test(n)).sort()) {
    const h = await hashSuffix(join(partDir, s), Date.now() / 1000, 604800);
    if (h !== undefined) fromDisk[s] = h;
  }
  expect(Object.keys(fromDisk).length).toBeGreaterThan(0);
  expect(cached).toEqual(fromDisk);
  expect(await readdir(join(tree.devices, 'sda', 'tmp'))).toEqual([]);
});
