// Module hooks that let a child process started by a unit test run this package's TypeScript
// sources directly (as vitest does in the parent): `@swiftlet/<pkg>` -> its src/index.ts,
// `./x.js` -> `./x.ts`. The parent transpiles the sources beforehand into SWIFTLET_TS_CACHE
// (see transpile.ts: loading TypeScript in every child costs seconds); a file missing there is
// transpiled here.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packagesDir = new URL('../../../', import.meta.url);
const cacheDir = process.env.SWIFTLET_TS_CACHE;

export function cacheName(file) {
  return `${createHash('sha1').update(file).digest('hex')}.js`;
}

export async function resolve(specifier, context, next) {
  const m = /^@swiftlet\/([a-z-]+)$/.exec(specifier);
  if (m) return { url: new URL(`${m[1]}/src/index.ts`, packagesDir).href, shortCircuit: true };
  if (specifier.endsWith('.js') && context.parentURL?.endsWith('.ts') && specifier.startsWith('.')) {
    const url = new URL(specifier.replace(/\.js$/, '.ts'), context.parentURL);
    if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const file = fileURLToPath(url);
  if (cacheDir) {
    try {
      return { format: 'module', source: await readFile(join(cacheDir, cacheName(file)), 'utf8'), shortCircuit: true };
    } catch {
      // not transpiled by the parent: do it here
    }
  }
  const { default: ts } = await import('typescript');
  const out = ts.transpileModule(await readFile(file, 'utf8'), {
    fileName: file,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}
