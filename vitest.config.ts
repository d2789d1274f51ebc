import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const packages = readdirSync(`${root}packages`).filter((p) => existsSync(`${root}packages/${p}/package.json`));

// Tests import each other's packages from source, so `vitest` needs no build; the CLI tests that
// spawn `deltatune` use the built bin (`npm test` builds first).
const alias = [
  { find: /^@deltatune\/models\/node$/, replacement: `${root}packages/models/src/node.ts` },
  ...packages.map((p) => ({ find: new RegExp(`^@deltatune/${p}$`), replacement: `${root}packages/${p}/src/index.ts` })),
];

export default defineConfig({
  test: {
    projects: [
      ...packages.map((p) => ({
        resolve: { alias },
        test: {
          name: p,
          root: `${root}packages/${p}`,
          include: ['test/**/*.test.ts'],
          setupFiles: [`${root}test-setup.ts`],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      })),
    ],
  },
});
