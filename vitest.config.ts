import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

// Unit tests import workspace packages from their TypeScript sources, so that a unit test run
// needs no build; integration tests start the built bins (`dist/`) as real processes.
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));

export default defineConfig({
  resolve: {
    alias: [{ find: /^@swiftlet\/([a-z-]+)$/, replacement: `${packagesDir}$1/src/index.ts` }],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'ring-builder/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
