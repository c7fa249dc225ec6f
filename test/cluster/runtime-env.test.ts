/**
 * The all-in-one cluster starts every program with the environment of its systemd unit: the two
 * are kept equal here, so benchmarks and `make run` measure what operators run.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROGRAM_ENVIRONMENT, PROGRAM_NODE_FLAGS, REPO_ROOT, programEnvironment, programNodeFlags } from '@swiftlet/cluster';

const unitDir = join(REPO_ROOT, 'etc', 'systemd');

/** The `swiftlet-<program>` bin script (packages/<package>/bin/), which the units run by its #! line. */
function binScript(program: string): string {
  const packages = join(REPO_ROOT, 'packages');
  for (const pkg of readdirSync(packages)) {
    const path = join(packages, pkg, 'bin', `swiftlet-${program}.js`);
    if (existsSync(path)) return path;
  }
  throw new Error(`no bin script for ${program}`);
}

function unitEnvironment(text: string): { program: string; env: Record<string, string> } {
  const exec = /^ExecStart=.*\bswiftlet-([a-z-]+)\s/m.exec(text);
  if (!exec?.[1]) throw new Error('unit without a swiftlet ExecStart');
  const env: Record<string, string> = {};
  for (const m of text.matchAll(/^Environment=([A-Z_]+)=(.*)$/gm)) env[m[1] as string] = m[2] as string;
  return { program: exec[1], env };
}

describe('program environment', () => {
  const units = readdirSync(unitDir).filter((f) => f.endsWith('.service'));

  it('has a unit for every program and the same variables as each unit', () => {
    expect(units.length).toBe(Object.keys(PROGRAM_ENVIRONMENT).length);
    for (const unit of units) {
      const { program, env } = unitEnvironment(readFileSync(join(unitDir, unit), 'utf8'));
      expect({ unit, env }).toEqual({ unit, env: PROGRAM_ENVIRONMENT[program] });
    }
  });

  it('starts each program with the node flags of its bin\'s #! line (what the units run)', () => {
    for (const unit of units) {
      const { program } = unitEnvironment(readFileSync(join(unitDir, unit), 'utf8'));
      const firstLine = readFileSync(binScript(program), 'utf8').split('\n')[0];
      const flags = programNodeFlags(program);
      expect({ program, firstLine }).toEqual({
        program,
        firstLine: flags.length === 0 ? '#!/usr/bin/env node' : `#!/usr/bin/env -S node ${flags.join(' ')}`,
      });
    }
    expect(Object.keys(PROGRAM_NODE_FLAGS).every((p) => p in PROGRAM_ENVIRONMENT)).toBe(true);
  });

  it('lets the caller override values and appends the caller NODE_OPTIONS after ours', () => {
    const env = programEnvironment('object-server', { NODE_OPTIONS: '--max-semi-space-size=8', UV_THREADPOOL_SIZE: '8', PATH: '/bin' });
    expect(env['UV_THREADPOOL_SIZE']).toBe('8');
    expect(env['NODE_OPTIONS']).toBe('--max-semi-space-size=4 --max-semi-space-size=8');
    expect(env['MALLOC_TRIM_THRESHOLD_']).toBe(String(32 * 1024 * 1024));
    expect(env['PATH']).toBe('/bin');
    expect(programEnvironment('unknown-program', { PATH: '/bin' })).toEqual({ PATH: '/bin' });
  });
});
