/**
 * The programs' one-file bundles (@swiftlet/common/programs): every bin runs its own program, a
 * bundle runs as its compiled modules do, and a compile after the bundle was written sends the
 * bins back to the compiled modules instead of stale code.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PROGRAMS, REPO_ROOT, bundlePath, freshBundle, programEntry } from '@swiftlet/common/programs';

const run = promisify(execFile);

describe('program bundles', () => {
  const temps: string[] = [];
  afterAll(async () => {
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('every bin runs a known program, and every program has a bin', async () => {
    const launched = new Set<string>();
    for (const dir of [...(await readdir(join(REPO_ROOT, 'packages'))).map((d) => join('packages', d)), 'ring-builder']) {
      const bins = await readdir(join(REPO_ROOT, dir, 'bin')).catch(() => [] as string[]);
      for (const bin of bins.filter((b) => b !== 'swiftlet-cluster.js')) {
        const text = await readFile(join(REPO_ROOT, dir, 'bin', bin), 'utf8');
        const program = /programEntry\('([a-z-]+)'\)/.exec(text)?.[1];
        expect(program, bin).toBe(bin.replace(/^swiftlet-/, '').replace(/\.js$/, ''));
        expect(PROGRAMS.find((p) => p.program === program)?.packageDir, bin).toBe(dir);
        launched.add(program as string);
      }
    }
    expect([...launched].sort()).toEqual(PROGRAMS.map((p) => p.program).sort());
  });

  it('the build leaves an up-to-date bundle for every program, and the bins run it', () => {
    for (const p of PROGRAMS) {
      expect(freshBundle(p.program), p.program).toBe(bundlePath(p.program));
      expect(programEntry(p.program)).toBe(bundlePath(p.program));
    }
  });

  it('a bundled program answers as its compiled modules do', async () => {
    const bundled = await run(process.execPath, [join(REPO_ROOT, 'ring-builder', 'bin', 'swiftlet-ring-builder.js')]).catch(
      (e: { stdout: string; code: number }) => e,
    );
    const compiled = await run(process.execPath, [join(REPO_ROOT, 'ring-builder', 'dist', 'cli.js')]).catch(
      (e: { stdout: string; code: number }) => e,
    );
    expect(bundled.stdout).toContain('swiftlet-ring-builder');
    expect(bundled.stdout).toBe(compiled.stdout);
  });

  it('a package compiled after the bundle was written makes the bundle stale', async () => {
    const root = await mkdtemp(join(tmpdir(), 'swiftlet-programs-'));
    temps.push(root);
    const bundle = bundlePath('object-replicator', root);
    await mkdir(dirname(bundle), { recursive: true });
    await writeFile(bundle, '');
    const info = join(root, 'packages', 'common', 'tsconfig.tsbuildinfo');
    await mkdir(dirname(info), { recursive: true });
    await mkdir(join(root, 'ring-builder'), { recursive: true });
    await writeFile(info, '{}');
    const t = Date.now() / 1000;
    await utimes(info, t - 60, t - 60);
    await utimes(bundle, t - 30, t - 30);
    expect(freshBundle('object-replicator', root)).toBe(bundle);
    expect(freshBundle('object-server', root)).toBeUndefined(); // none written
    await utimes(info, t, t);
    expect(freshBundle('object-replicator', root)).toBeUndefined();
  });

  it('an unknown program is an error, not a silent fallback', () => {
    expect(() => programEntry('object-auditor')).toThrow('unknown program "object-auditor"');
  });
});
