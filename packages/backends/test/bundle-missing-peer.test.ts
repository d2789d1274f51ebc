import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { build, type BuildOptions } from 'esbuild';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));

// An app that installed only the wasm backend: the webgpu and cpu packages do not resolve.
const WITHOUT_WEBGPU_AND_CPU: BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  write: false,
  logLevel: 'silent',
  external: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', '@deltatune/*'],
  alias: { '@tensorflow/tfjs-backend-webgpu': '/not-installed/webgpu', '@tensorflow/tfjs-backend-cpu': '/not-installed/cpu' },
};

describe('selectBackend in a bundle whose app left out optional backends', () => {
  it('bundles with esbuild: the missing packages stay imports that fail at run time (read as not installed)', async () => {
    const result = await build({ ...WITHOUT_WEBGPU_AND_CPU, entryPoints: [DIST] });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles![0].text;
    expect(code).toContain('import("@tensorflow/tfjs-backend-webgpu")');
    expect(code).toContain('import("@tensorflow/tfjs-backend-cpu")');
    // Node-only packages never enter a page's bundle, installed or not.
    expect(code).not.toMatch(/import\("(webgpu|@tensorflow\/tfjs-node(-gpu)?)"\)/);
  });

  it('the check can fail: a bare import() of a missing package is a build error', async () => {
    const bare = build({
      ...WITHOUT_WEBGPU_AND_CPU,
      stdin: { contents: "export const load = () => import('@tensorflow/tfjs-backend-webgpu');", loader: 'js' },
    });
    await expect(bare).rejects.toThrow(/Could not resolve/);
  });
});
