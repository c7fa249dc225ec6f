/** Transpiles the TypeScript sources a stress child needs into `cacheDir` (see ts-hooks.mjs). */
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const packagesDir = fileURLToPath(new URL('../../../', import.meta.url));

export async function transpilePackages(cacheDir: string, packages: string[]): Promise<void> {
  for (const pkg of packages) {
    const dirs = [join(packagesDir, pkg, 'src'), join(packagesDir, pkg, 'src', 'test-fixtures')];
    for (const dir of dirs) {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
        const file = join(dir, name);
        const out = ts.transpileModule(await readFile(file, 'utf8'), {
          fileName: file,
          compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        });
        await writeFile(join(cacheDir, `${createHash('sha1').update(file).digest('hex')}.js`), out.outputText);
      }
    }
  }
}
