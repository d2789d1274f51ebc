import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const packages = readdirSync(`${root}packages`).filter((p) => existsSync(`${root}packages/${p}/package.json`));
const examples = readdirSync(`${root}examples`).filter((p) => existsSync(`${root}examples/${p}/package.json`));
const apps = readdirSync(`${root}apps`).filter((p) => existsSync(`${root}apps/${p}/package.json`));

// Tests import the other packages from source, so editing one needs no rebuild. The packages with
// process-wide registries are the exception: core (the method registry), kernels (fused kernels)
// and backends (whose build bundles tfjs's gradient definitions, see packages/backends/build) are
// used as built, as users do, so one copy of each runs. `npm test` builds everything first; the
// CLI tests spawn the built bin.
const BUILT = ['core', 'kernels', 'backends'];
const alias = [
  { find: /^@deltatune\/models\/node$/, replacement: `${root}packages/models/src/node.ts` },
  { find: /^@deltatune\/train\/node$/, replacement: `${root}packages/train/src/node.ts` },
  { find: /^@deltatune\/node\/composition$/, replacement: `${root}packages/node/src/composition.ts` },
  ...packages
    .filter((p) => !BUILT.includes(p))
    .map((p) => ({ find: new RegExp(`^@deltatune/${p}$`), replacement: `${root}packages/${p}/src/index.ts` })),
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
      // Apps test their built page in a browser (apps/studio: Chromium), and the files it makes in Node.
      ...apps.map((p) => ({
        resolve: { alias },
        test: {
          name: p,
          root: `${root}apps/${p}`,
          include: ['test/**/*.test.ts'],
          setupFiles: [`${root}test-setup.ts`],
          testTimeout: 900_000,
          hookTimeout: 300_000,
          // Each file starts Chromium and trains: one at a time on a 2-core machine.
          fileParallelism: false,
        },
      })),
      // Example plugins test against the *built* @deltatune packages, as a third party would.
      ...examples.map((p) => ({
        test: {
          name: p,
          root: `${root}examples/${p}`,
          include: ['test/**/*.test.ts'],
          setupFiles: [`${root}test-setup.ts`],
          testTimeout: 300_000,
        },
      })),
    ],
  },
});
