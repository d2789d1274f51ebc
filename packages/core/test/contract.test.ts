import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { satisfies } from '../src/semver';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CORE_DIST = `${ROOT}packages/core/dist/index.js`;

describe('@deltatune/core is contracts only', () => {
  it('importing it registers no kernel and no gradient (side-effect free)', () => {
    // A fresh process: this test file's own setup imports @deltatune/backends, which registers them.
    const script = `
      const tf = await import('@tensorflow/tfjs-core');
      const before = { kernels: tf.getKernelsForBackend('cpu').length + tf.getKernelsForBackend('webgpu').length, grad: !!tf.getGradient('MatMul') };
      const core = await import(${JSON.stringify(pathToFileURL(CORE_DIST).href)});
      const after = { kernels: tf.getKernelsForBackend('cpu').length + tf.getKernelsForBackend('webgpu').length, grad: !!tf.getGradient('MatMul') };
      const fused = Object.values(core.FUSED_KERNELS).filter((n) => tf.getKernel(n, 'cpu') || tf.getKernel(n, 'webgpu') || tf.getGradient(n));
      console.log(JSON.stringify({ before, after, fused, exports: Object.keys(core).length }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' }).trim());
    expect(out.after).toEqual(out.before);
    expect(out.after.grad).toBe(false);
    expect(out.fused).toEqual([]);
    // A cap, so core stays contracts: raise it only for a contract every method family shares (61: PEFT_DEFAULT_TARGETS; 62: encodeDelta, the in-memory delta files a Node folder and a page's download share).
    expect(out.exports).toBeLessThanOrEqual(62);
  });

  it('its package.json says so, and its source holds no WGSL and imports no backend or kernel package', () => {
    expect(JSON.parse(readFileSync(`${ROOT}packages/core/package.json`, 'utf8')).sideEffects).toBe(false);
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(`${dir}/${e.name}`) : [`${dir}/${e.name}`]));
    for (const f of files(`${ROOT}packages/core/src`)) {
      const src = readFileSync(f, 'utf8');
      expect(src, f).not.toMatch(
        /(from|import)\s*\(?\s*'(@tensorflow\/tfjs-backend-|@tensorflow\/tfjs-node|@deltatune\/(kernels|backends)|webgpu')/,
      );
      expect(src, f).not.toMatch(/\bfn \w+\(|var<workgroup>|@compute|workgroupBarrier/); // WGSL
    }
  });
});

describe('version constants come from package.json', () => {
  const packages = ['packages', 'examples'].flatMap((d) =>
    readdirSync(`${ROOT}${d}`)
      .filter((p) => existsSync(`${ROOT}${d}/${p}/package.json`))
      .map((p) => `${ROOT}${d}/${p}`),
  );
  const manifest = (dir: string) => JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'));
  const coreVersion = manifest(`${ROOT}packages/core`).version as string;

  it('every method the built packages register carries its package version and its core peer range', async () => {
    let methods = 0;
    for (const dir of packages) {
      const pkg = manifest(dir);
      if (!pkg.peerDependencies?.['@deltatune/core'] || !existsSync(`${dir}/dist/index.js`)) continue;
      const mod = await import(pathToFileURL(`${dir}/dist/index.js`).href);
      for (const value of Object.values(mod)) {
        const m = value as { name?: unknown; version?: unknown; coreRange?: unknown; packageName?: unknown; options?: unknown };
        if (!m || typeof m !== 'object' || typeof m.packageName !== 'string' || m.packageName !== pkg.name) continue;
        methods++;
        expect(m.version, `${pkg.name} ${String(m.name)}`).toBe(pkg.version);
        expect(m.coreRange, `${pkg.name} ${String(m.name)}`).toBe(pkg.peerDependencies['@deltatune/core']);
      }
    }
    expect(methods).toBeGreaterThanOrEqual(6); // lora, adapter, bitfit, prompt, prefix, ia3
    const core = await import(pathToFileURL(CORE_DIST).href);
    expect(core.CORE_VERSION).toBe(coreVersion);
  });

  it("every package's peer range on @deltatune/core admits the core in this repo (a core bump without the plugins fails here)", () => {
    for (const dir of packages) {
      const range = manifest(dir).peerDependencies?.['@deltatune/core'];
      if (range) expect(satisfies(coreVersion, range), `${manifest(dir).name}: core ${coreVersion} vs peer ${range}`).toBe(true);
    }
  });
});
