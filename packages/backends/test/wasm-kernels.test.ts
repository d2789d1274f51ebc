// deltatune's replacements for tfjs 4.22 wasm kernels (Identity, GatherV2, leading-axis Sum): the
// same values as the cpu backend, tensors and memory accounted the same, tfjs's errors kept.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from '@deltatune/backends';

/** `make()` computed on cpu and on wasm (same seeded inputs), as flat arrays. */
async function onBoth(make: () => tf.Tensor): Promise<{ cpu: Float32Array; wasm: Float32Array; shape: number[] }> {
  await selectBackend('cpu');
  const c = make();
  const cpu = c.dataSync() as Float32Array;
  c.dispose();
  await selectBackend('wasm');
  const w = make();
  const out = { cpu, wasm: w.dataSync() as Float32Array, shape: w.shape };
  w.dispose();
  return out;
}

const worst = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('wasm kernel replacements', () => {
  afterAll(async () => selectBackend('wasm'));

  it('Identity (the tape saving tensors for backward) shares the data: no copy, and a clone outlives its source', async () => {
    await selectBackend('wasm');
    expect((globalThis as Record<symbol, unknown>)[Symbol.for('@deltatune/backends/wasm-identity')]).toBe(true);
    const x = tf.tensor1d([1, 2, 3, 4]);
    const before = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
    const y = tf.clone(x);
    // One more tensor, no more data buffers: the clone points at x's data (tfjs counts bytes per tensor).
    expect(tf.memory().numTensors).toBe(before.numTensors + 1);
    expect((tf.memory() as typeof before).numDataBuffers).toBe(before.numDataBuffers);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
    y.dispose();
    expect((tf.memory() as typeof before).numDataBuffers).toBe(before.numDataBuffers - 1);
    // Gradients through ops whose inputs the tape saved: as on cpu.
    const f = (v: tf.Tensor) => tf.sum(tf.mul(tf.exp(v), tf.sin(v)));
    const g = await onBoth(() => tf.grad(f)(tf.tensor1d([0.1, -0.7, 1.3, 2.0])));
    expect(worst(g.wasm, g.cpu)).toBeLessThan(1e-6);
    const start = tf.memory().numTensors;
    for (let i = 0; i < 3; i++)
      tf.tidy(() =>
        tf
          .grad(f)(tf.tensor1d([0.5, 1.5]))
          .dataSync(),
      );
    expect(tf.memory().numTensors).toBe(start);
  });

  it('GatherV2 of rows (an embedding lookup) matches cpu; other axes, and bad indices, keep tfjs behaviour', async () => {
    const table = () => tf.randomNormal([50, 3, 4], 0, 1, 'float32', 3);
    const idx = () =>
      tf.tensor2d(
        [
          [0, 49, 7],
          [7, 7, 12],
        ],
        [2, 3],
        'int32',
      );
    const rows = await onBoth(() => tf.gather(table(), idx()));
    expect(rows.shape).toEqual([2, 3, 3, 4]);
    expect(rows.wasm).toEqual(rows.cpu);
    const ints = await onBoth(() => tf.gather(tf.reshape(tf.range(0, 20, 1, 'int32'), [10, 2]), tf.tensor1d([9, 0, 4], 'int32')));
    expect(Array.from(ints.wasm)).toEqual([18, 19, 0, 1, 8, 9]);
    const axis1 = await onBoth(() => tf.gather(table(), tf.tensor1d([2, 0], 'int32'), 1));
    expect(axis1.wasm).toEqual(axis1.cpu);
    await selectBackend('wasm');
    expect(() => tf.gather(tf.ones([4, 2]), tf.tensor1d([4], 'int32'))).toThrow(/GatherV2: the index value 4 is not in \[0, 3\]/);
  });

  it('Sum over leading axes (bias and layer-norm gradients) matches cpu, with keepDims and negative axes; others as before', async () => {
    const x = () => tf.randomNormal([64, 5, 24], 1, 3, 'float32', 9);
    for (const [axis, keepDims] of [
      [0, false],
      [[0, 1], false],
      [[1, 0], true],
      [[-3], false],
      [2, false],
      [[0, 2], false],
      [[0, 1, 2], false],
    ] as Array<[number | number[], boolean]>) {
      const r = await onBoth(() => tf.sum(x(), axis, keepDims));
      await selectBackend('cpu');
      expect(r.shape, JSON.stringify(axis)).toEqual(tf.sum(x(), axis, keepDims).shape);
      const scale = Math.max(...Array.from(r.cpu, Math.abs));
      expect(worst(r.wasm, r.cpu) / scale, JSON.stringify(axis)).toBeLessThan(1e-6);
    }
    await selectBackend('wasm');
    // int32 sums keep tfjs's kernel (and its dtype).
    expect(
      tf.sum(
        tf.tensor2d(
          [
            [1, 2],
            [3, 4],
          ],
          [2, 2],
          'int32',
        ),
        0,
      ).dtype,
    ).toBe('int32');
  });
});
