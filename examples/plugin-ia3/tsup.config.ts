import { defineConfig } from 'tsup';

// A third-party package's own build: nothing from the monorepo's build helpers.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  external: [/^@tensorflow\//, /^@deltatune\//],
});
