/**
 * Where Swiftlet's programs are, and their one-file bundles. Imported on its own, as
 * `@swiftlet/common/programs`, by the bins (bin/*.js) before anything else is loaded.
 *
 * A program's compiled modules are ~60 files of our own and ~50 of its libraries, and Node's ES
 * module loader spends more time per file than on the code in it: the replicator took 0.25-0.32 s
 * of CPU to start, of which `node -e 0` is 0.12; bundled, 0.19 s. That counts for every
 * short-lived run (`swiftlet-object-replicator --once`, the ring builder, get-nodes) and for the
 * tests, which start hundreds of processes. `make build` writes the bundles after `tsc --build`
 * (packages/cluster/src/bundle-programs.ts).
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the checkout (packages/common/{src,dist}/ -> ../../..). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface Program {
  /** Name, as in `swiftlet-<program>`. */
  program: string;
  /** Folder of its package, from the checkout's root. */
  packageDir: string;
  /** Compiled entry point, from the package's folder. */
  entry: string;
}

/** Every program a bin runs, but the cluster launcher itself. */
export const PROGRAMS: readonly Program[] = [
  { program: 'object-server', packageDir: 'packages/object-server', entry: 'dist/bin/object-server.js' },
  { program: 'object-updater', packageDir: 'packages/object-server', entry: 'dist/bin/object-updater.js' },
  { program: 'container-server', packageDir: 'packages/container-server', entry: 'dist/bin/container-server.js' },
  { program: 'account-server', packageDir: 'packages/container-server', entry: 'dist/bin/account-server.js' },
  { program: 'container-updater', packageDir: 'packages/container-server', entry: 'dist/bin/container-updater.js' },
  { program: 'storage-server', packageDir: 'packages/storage-node', entry: 'dist/bin/storage-server.js' },
  { program: 'object-replicator', packageDir: 'packages/replicator', entry: 'dist/bin/object-replicator.js' },
  { program: 'proxy-server', packageDir: 'packages/proxy', entry: 'dist/bin/proxy-server.js' },
  { program: 'ring-builder', packageDir: 'ring-builder', entry: 'dist/cli.js' },
];

function find(program: string): Program {
  const p = PROGRAMS.find((x) => x.program === program);
  if (!p) throw new Error(`unknown program "${program}"`);
  return p;
}

/** A program's bundle: `<package>/dist/bundle/<program>.js`. */
export function bundlePath(program: string, root = REPO_ROOT): string {
  const p = find(program);
  return join(root, p.packageDir, 'dist', 'bundle', `${p.program}.js`);
}

/**
 * The bundle of `program` when no package was compiled after it was written, else undefined. A
 * bare `tsc --build` after a change leaves the bundles behind: this keeps the bins, the tests and
 * the cluster launcher from running stale code then.
 */
export function freshBundle(program: string, root = REPO_ROOT): string | undefined {
  const path = bundlePath(program, root);
  const bundled = statSync(path, { throwIfNoEntry: false })?.mtimeMs;
  if (bundled === undefined) return undefined;
  const packageDirs = readdirSync(join(root, 'packages')).map((d) => join('packages', d)).concat('ring-builder');
  for (const dir of packageDirs) {
    const compiled = statSync(join(root, dir, 'tsconfig.tsbuildinfo'), { throwIfNoEntry: false })?.mtimeMs;
    if (compiled !== undefined && compiled > bundled) return undefined;
  }
  return path;
}

/** The file to run for `program`: its up-to-date bundle, else its compiled entry point. */
export function programEntry(program: string): string {
  const p = find(program);
  return freshBundle(program) ?? join(REPO_ROOT, p.packageDir, p.entry);
}
