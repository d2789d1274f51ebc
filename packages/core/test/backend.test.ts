import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type PackageLoader } from '@deltatune/core';

const absent: PackageLoader = async (specifier) => {
  const e = new Error(`Cannot find package '${specifier}'`) as Error & { code: string };
  e.code = 'ERR_MODULE_NOT_FOUND';
  throw e;
};

describe('backend selection', () => {
  it('naming a backend that is not installed says what to install', async () => {
    await expect(selectBackend('tensorflow', absent)).rejects.toThrow(/backend "tensorflow" is not available: neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node is installed[\s\S]*fix: npm install @tensorflow\/tfjs-node-gpu/);
    await expect(selectBackend('webgpu', absent)).rejects.toThrow(/backend "webgpu" is not available[\s\S]*npm install @tensorflow\/tfjs-backend-webgpu/);
    await expect(selectBackend('wasm', absent)).rejects.toThrow(/npm install @tensorflow\/tfjs-backend-wasm/);
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
      const table = tf.variable(tf.tensor2d([[1, 2], [3, 4], [5, 6]]));
      const ids = tf.tensor1d([2, 0, 2, 1], 'int32');
      const w = tf.tensor2d([[1, -1], [2, 0.5], [3, 1], [-2, 4]]);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(tf.gather(table, ids), w)), [table]);
      return Array.from(grads[table.name].dataSync());
    };
    await selectBackend('cpu');
    const onCpu = grad();
    await selectBackend('wasm');
    expect(grad()).toEqual(onCpu);
    expect(onCpu).toEqual([2, 0.5, -2, 4, 4, 0]);
  });

  it('transposed matrix products give the plain-ops answer (both transpose flags)', () => {
    const x = tf.randomNormal([64, 48], 0, 1, 'float32', 1);
    const y = tf.randomNormal([32, 48], 0, 1, 'float32', 2);
    const z = tf.randomNormal([64, 16], 0, 1, 'float32', 3);
    const gap = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
    expect(gap(tf.matMul(x, y, false, true), tf.matMul(x, tf.transpose(y)))).toBeLessThan(1e-5);
    expect(gap(tf.matMul(x, z, true, false), tf.matMul(tf.transpose(x), z))).toBeLessThan(1e-5);
    // exactly the values of a hand-sized case: [[1,2],[3,4]]^T @ [[1],[1]] = [[4],[6]]
    expect(tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[1], [1]]), true, false).arraySync()).toEqual([[4], [6]]);
  });

});
