import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, gelu, normal } from '@deltatune/core';
import { lowMemoryVariableGrads } from '@deltatune/train';
import { selectBackend } from '@deltatune/backends';

afterAll(async () => {
  await selectBackend('wasm');
});

/**
 * lowMemoryVariableGrads against tf.variableGrads on the same graph: the same gradients bit for
 * bit, a lower peak (tfjs keeps every intermediate gradient and saved activation to the end of the
 * backward pass), and nothing left behind or freed twice.
 */
describe.each(['cpu', 'wasm'])('low-memory gradients on %s', (backend) => {
  it('equal tf.variableGrads exactly, with a lower peak and no leak', async () => {
    await selectBackend(backend as 'cpu' | 'wasm');
    const rng = createRng(11);
    const x = normal(rng, [128, 256], 1);
    const weights = Array.from({ length: 6 }, () => tf.variable(normal(rng, [256, 256], 0.06)));
    // A pass-through gradient (dy handed back as the input's own gradient): the case where freeing
    // an op's output gradient early would free its input's too.
    const passThrough = tf.customGrad((t: tf.Tensor) => ({ value: tf.mul(t, 1), gradFunc: (dy: tf.Tensor) => dy }));
    const loss = () => {
      let h: tf.Tensor = x;
      for (const w of weights) h = gelu(passThrough(tf.matMul(h, w)) as tf.Tensor, 'erf');
      return tf.mean(tf.square(h)) as tf.Scalar;
    };
    const run = async (grads: typeof tf.variableGrads) => {
      const { value, grads: g } = grads(loss, weights);
      const out = { loss: (await value.data())[0], grads: await Promise.all(weights.map((w) => g[w.name].data())) };
      tf.dispose([value, ...Object.values(g)]);
      return out;
    };
    await run(tf.variableGrads);
    const before = tf.memory().numTensors;
    let reference!: Awaited<ReturnType<typeof run>>;
    let low!: Awaited<ReturnType<typeof run>>;
    const tfjsPeak = (await tf.profile(async () => void (reference = await run(tf.variableGrads)))).peakBytes;
    const lowPeak = (await tf.profile(async () => void (low = await run(lowMemoryVariableGrads)))).peakBytes;
    const base = tf.memory().numBytes;
    console.log(
      `${backend}: peak above the inputs ${((tfjsPeak - base) / 2 ** 20).toFixed(2)} MiB (tf.variableGrads) -> ${((lowPeak - base) / 2 ** 20).toFixed(2)} MiB`,
    );
    expect(low.loss).toBe(reference.loss);
    low.grads.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(reference.grads[i])));
    // How much lower depends on how many intermediates the backend's ops make (cpu runs the fused FUSED_KERNELS.gelu: fewer).
    expect(lowPeak - base).toBeLessThan(0.95 * (tfjsPeak - base));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ...weights]);
  });
});
