import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type PackageLoader } from '@deltatune/backends';

const absent: PackageLoader = async (specifier) => {
  const e = new Error(`Cannot find package '${specifier}'`) as Error & { code: string };
  e.code = 'ERR_MODULE_NOT_FOUND';
  throw e;
};

describe('backend selection', () => {
  it('naming a backend that is not installed says what to install', async () => {
    await expect(selectBackend('tensorflow', absent)).rejects.toThrow(
      /backend "tensorflow" is not available: neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node is installed[\s\S]*fix: npm install @tensorflow\/tfjs-node-gpu/,
    );
    await expect(selectBackend('webgpu', absent)).rejects.toThrow(
      /backend "webgpu" is not available[\s\S]*npm install @tensorflow\/tfjs-backend-webgpu/,
    );
  });

  it('a backend the page already registered needs no import (how a browser bundle selects one)', async () => {
    // test-setup imported @tensorflow/tfjs-backend-wasm, so its factory is registered: the loader,
    // which would fail, is not consulted.
    expect(await selectBackend('wasm', absent)).toBe('wasm');
  });

  it('a .wasm binary that does not load says to serve the files or point setWasmPaths at them, not to npm install', () => {
    // A fresh process: the wasm backend of this one is already initialised.
    const script = `
      import * as wasm from '@tensorflow/tfjs-backend-wasm';
      import { selectBackend } from '@deltatune/backends';
      wasm.setWasmPaths('/nowhere/');
      try { await selectBackend('wasm'); console.log('selected'); } catch (e) { console.log(e.message); }`;
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(out).toMatch(/backend "wasm" is not available: its \.wasm files did not load\n\s*fix: .*setWasmPaths\(\)/);
    expect(out).not.toMatch(/npm install/);
  });

  it('auto falls through to wasm when imports fail as they do in browsers and bundlers', async () => {
    const messages = [
      'Failed to resolve module specifier "webgpu". Relative references must start with either "/", "./", or "../".', // Chromium
      'error loading dynamically imported module: http://localhost/node_modules/webgpu', // Firefox
      'Importing a module script failed.', // Safari
      'Could not resolve "@tensorflow/tfjs-node-gpu" imported by "@deltatune/backends". Is it installed?', // Vite
    ];
    for (const message of messages) {
      const browserLike: PackageLoader = async () => {
        throw new TypeError(message);
      };
      expect(await selectBackend('auto', browserLike), message).toBe('wasm');
    }
    // Any other failure is a real error and surfaces.
    const broken: PackageLoader = async () => {
      throw new SyntaxError('Unexpected token < in module');
    };
    await expect(selectBackend('tensorflow', broken)).rejects.toThrow(/Unexpected token/);
  });

  it('rejects an unknown name with the list of choices', async () => {
    await expect(selectBackend('cuda' as never)).rejects.toThrow(/unknown backend "cuda"[\s\S]*auto, webgpu, tensorflow, wasm, cpu/);
  });

  it('auto falls back past tensorflow and webgpu (absent, or only a software adapter, on these machines) to wasm', async () => {
    const realImport: PackageLoader = (s) => import(s);
    expect(await selectBackend('auto', realImport)).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('cpu and wasm are selectable by name', async () => {
    expect(await selectBackend('cpu')).toBe('cpu');
    expect(await selectBackend('wasm')).toBe('wasm');
  });
});

describe('wasm kernels deltatune adds or replaces', () => {
  it('the gradient of gather w.r.t. its table (UnsortedSegmentSum) matches the cpu backend', async () => {
    const grad = () => {
      const table = tf.variable(
        tf.tensor2d([
          [1, 2],
          [3, 4],
          [5, 6],
        ]),
      );
      const ids = tf.tensor1d([2, 0, 2, 1], 'int32');
      const w = tf.tensor2d([
        [1, -1],
        [2, 0.5],
        [3, 1],
        [-2, 4],
      ]);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(table, ids), w)), [table]);
      return Array.from(grads[table.name].dataSync());
    };
    await selectBackend('cpu');
    const onCpu = grad();
    await selectBackend('wasm');
    expect(grad()).toEqual(onCpu);
    expect(onCpu).toEqual([2, 0.5, -2, 4, 4, 0]);
  });

  it('transposed matrix products match a float64 reference (transposeA, transposeB, both; 2-D and batched)', async () => {
    await selectBackend('wasm');
    // The patched kernel is the one under test (the wasm backend's own is what it replaces).
    expect((globalThis as Record<symbol, unknown>)[Symbol.for('@deltatune/core/wasm-matmul')]).toBe(true);
    /** a @ b in float64 from the raw values: a is [...batch, m, k] (or [..., k, m] when transposed), b likewise. */
    const reference = (a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean): { shape: number[]; values: Float64Array } => {
      const [av, bv] = [a.dataSync(), b.dataSync()];
      const [ar, ac] = a.shape.slice(-2);
      const [br, bc] = b.shape.slice(-2);
      const [m, k, n] = [tA ? ac : ar, tA ? ar : ac, tB ? br : bc];
      expect(tB ? bc : br).toBe(k);
      const count = (t: tf.Tensor) => t.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      // One side may hold a single matrix for every item of the other's batch (broadcast).
      const [batchA, batchB] = [count(a), count(b)];
      const batch = Math.max(batchA, batchB);
      const values = new Float64Array(batch * m * n);
      for (let p = 0; p < batch; p++) {
        const [pa, pb] = [batchA === 1 ? 0 : p, batchB === 1 ? 0 : p];
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = 0;
            for (let q = 0; q < k; q++) {
              const x = av[pa * ar * ac + (tA ? q * ac + i : i * ac + q)];
              const y = bv[pb * br * bc + (tB ? j * bc + q : q * bc + j)];
              s += x * y;
            }
            values[(p * m + i) * n + j] = s;
          }
        }
      }
      const batchShape = (batchA >= batchB ? a : b).shape.slice(0, -2);
      return { shape: [...batchShape, m, n], values };
    };
    let seed = 10;
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[37, 53], [29, 53], false, true],
      [[53, 37], [53, 29], true, false],
      [[53, 37], [29, 53], true, true],
      [[64, 48], [32, 48], false, true],
      [[1, 53, 37], [1, 53, 29], true, false], // batched shape, one matrix: the patched path
      [[1, 37, 53], [1, 29, 53], false, true],
      // Several matrices: each item runs as a plain 2-D product (the backend's batched loop is ~8x slower).
      [[3, 37, 53], [3, 29, 53], false, true],
      [[3, 53, 37], [3, 29, 53], true, true],
      [[4, 16, 8], [4, 8, 12], false, false],
      [[4, 8, 16], [4, 8, 12], true, false],
      [[2, 3, 37, 53], [2, 3, 29, 53], false, true], // attention's [batch, heads, seq, dim]
      [[2, 3, 37, 29], [2, 3, 37, 53], true, false],
      [[3, 37, 53], [1, 53, 29], false, false], // one side a single matrix, broadcast over the other's batch
      [[1, 53, 37], [3, 53, 29], true, false],
      [[2, 1], [2, 1], true, false],
    ];
    for (const [aShape, bShape, tA, tB] of cases) {
      const a = tf.randomNormal(aShape, 0, 1, 'float32', seed++);
      const b = tf.randomNormal(bShape, 0, 1, 'float32', seed++);
      const got = tf.matMul(a, b, tA, tB);
      const want = reference(a, b, tA, tB);
      const label = `${JSON.stringify(aShape)}${tA ? 'T' : ''} @ ${JSON.stringify(bShape)}${tB ? 'T' : ''}`;
      expect(got.shape, label).toEqual(want.shape);
      const values = got.dataSync();
      const scale = Math.max(...want.values.map(Math.abs));
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(values[i] - want.values[i]));
      expect(worst / scale, label).toBeLessThan(1e-4);
      tf.dispose([a, b, got]);
    }
    // exactly the values of a hand-sized case: [[1,2],[3,4]]^T @ [[1],[1]] = [[4],[6]]
    expect(
      tf
        .matMul(
          tf.tensor2d([
            [1, 2],
            [3, 4],
          ]),
          tf.tensor2d([[1], [1]]),
          true,
          false,
        )
        .arraySync(),
    ).toEqual([[4], [6]]);
  });
});
