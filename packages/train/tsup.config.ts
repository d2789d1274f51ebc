import { dirname, resolve } from 'node:path';
import type { Plugin } from 'esbuild';
import { packageBuild } from '../../tsup.shared';

const mainEntry = resolve('src/index.ts');

/**
 * The `/node` entry imports the main entry's API through `../index`: built, that import stays
 * `@deltatune/train` (the package's own name), so a program using both entries holds one copy of
 * the trainer, not one bundled into each.
 */
const nodeEntryUsesMainEntry: Plugin = {
  name: 'node-entry-uses-main-entry',
  setup(build) {
    build.onResolve({ filter: /^(\.\.\/)+index$/ }, (args) =>
      resolve(dirname(args.importer), `${args.path}.ts`) === mainEntry ? { path: '@deltatune/train', external: true } : undefined,
    );
  },
};

// Two entries: the trainer, which runs anywhere (a browser page included), and `/node` with disk
// checkpoints, the classifier folder and the shipped datasets.
export default packageBuild({
  entry: ['src/index.ts', 'src/node.ts'],
  shims: true,
  esbuildPlugins: [nodeEntryUsesMainEntry],
});
