/**
 * Writes every program's bundle (@swiftlet/common/programs says why). Only our own code is bundled: the
 * libraries stay imports from node_modules and load as they do unbundled (pino finds its
 * transports, level and tar-stream their files).
 */
import { join } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { PROGRAMS, REPO_ROOT, bundlePath } from '@swiftlet/common/programs';

/** Every bare import but our own packages (`@swiftlet/...`) stays an import. */
const librariesExternal: Plugin = {
  name: 'libraries-external',
  setup(b) {
    // esbuild's filters are Go regular expressions, without lookahead: the exception is here.
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith('@swiftlet/') ? undefined : { path: args.path, external: true }));
  },
};

/** Bundles every program; returns the bundles' paths. */
export async function bundlePrograms(): Promise<string[]> {
  return Promise.all(
    PROGRAMS.map(async (p) => {
      const outfile = bundlePath(p.program);
      await build({
        entryPoints: [join(REPO_ROOT, p.packageDir, p.entry)],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        plugins: [librariesExternal],
        // Stack traces can name the compiled module and line (node --enable-source-maps).
        sourcemap: 'linked',
        logLevel: 'warning',
      });
      return outfile;
    }),
  );
}
