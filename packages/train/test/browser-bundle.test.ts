import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';

const MAIN_ENTRY = fileURLToPath(new URL('../src/index.ts', import.meta.url));

/** Any import or require of a Node built-in left in bundled code, by specifier. */
function nodeBuiltinsIn(code: string): string[] {
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const specifiers = [
    ...code.matchAll(/\bfrom\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)|\brequire\s*\(\s*["']([^"']+)["']\s*\)/g),
  ].map((m) => m[1] ?? m[2] ?? m[3]);
  return specifiers.filter((s) => builtins.has(s) || s.startsWith('node:'));
}

describe('@deltatune/train in a browser', () => {
  it('the main entry bundles for the browser (esbuild, platform browser) with no Node built-in', async () => {
    // tfjs stays external (a page loads it as it likes); everything else, the other @deltatune
    // packages included, is bundled, so any Node built-in on the way fails the build.
    const result = await build({
      entryPoints: [MAIN_ENTRY],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
      external: ['@tensorflow/*'],
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0].text;
    expect(nodeBuiltinsIn(code)).toEqual([]);
    expect(code).not.toMatch(/require\(["'](node:)?fs["']\)/);
    // The trainer and the step are in it; the /node entry's files (disk, shipped datasets) are not.
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((f) => f.endsWith('train/src/trainer.ts'))).toBe(true);
    expect(inputs.some((f) => f.endsWith('train/src/train-step.ts'))).toBe(true);
    // So are the file datasets a page loads from a dropped file, with csv-parse's browser build
    // (its Node build bundles too, but needs Node's global Buffer at run time).
    expect(inputs.some((f) => f.endsWith('train/src/datasets/file-dataset.ts'))).toBe(true);
    expect(inputs.filter((f) => f.includes('node_modules/csv-parse/'))).toEqual(['node_modules/csv-parse/dist/esm/sync.js']);
    expect(inputs.filter((f) => /train\/src\/node(\/|\.ts)|packages\/node\//.test(f))).toEqual([]);
  });

  it('the check itself sees a Node built-in: a file importing node:path does not bundle', async () => {
    const bundle = build({
      stdin: {
        contents: "import { join } from 'node:path';\nexport * from './src/index';\nexport const at = join('a', 'b');",
        resolveDir: fileURLToPath(new URL('..', import.meta.url)),
        loader: 'ts',
      },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      external: ['@tensorflow/*'],
    });
    await expect(bundle).rejects.toThrow(/node:path/);
  });
});
