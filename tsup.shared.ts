import { defineConfig, type Options } from 'tsup';

/**
 * One build recipe for every package: ESM + CJS + .d.ts, tfjs and every @deltatune package left
 * external, so a user's install holds exactly one copy of each (the method registry and tfjs's
 * kernel registry both depend on that).
 */
export function packageBuild(overrides: Partial<Options> = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'es2022',
    splitting: false,
    external: [/^@tensorflow\//, /^@deltatune\//, 'webgpu'],
    ...overrides,
  });
}
