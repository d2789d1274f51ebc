import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, ADAMW_DEFAULTS, classificationMetrics, clipByGlobalNorm, globalNormClip, learningRate } from '@deltatune/train';

describe('AdamW', () => {
  it('matches the update computed by hand (two steps, decoupled weight decay)', () => {
    const x = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW([x], { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1 });
    const g1 = [0.5, -1];
    const g2 = [0.25, 2];
    opt.apply([tf.tensor1d(g1)], 0.01);
    opt.apply([tf.tensor1d(g2)], 0.01);
    // by hand, per element
    const expected = [1, -2].map((x0, i) => {
      let p = x0;
      let m = 0;
      let v = 0;
      [g1[i], g2[i]].forEach((g, t) => {
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        const mh = m / (1 - 0.9 ** (t + 1));
        const vh = v / (1 - 0.999 ** (t + 1));
        p = p - 0.01 * (mh / (Math.sqrt(vh) + 1e-8) + 0.1 * p);
      });
      return p;
    });
    const got = x.dataSync();
    expect(got[0]).toBeCloseTo(expected[0], 6);
    expect(got[1]).toBeCloseTo(expected[1], 6);
    opt.dispose();
    x.dispose();
  });

  it('per-variable learning-rate scales and a clip factor: the hand update with lr x scale and g x factor', () => {
    const [a, b] = [tf.variable(tf.tensor1d([1])), tf.variable(tf.tensor1d([1]))];
    const opt = new AdamW([a, b], { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 }, [1, 30]);
    opt.apply([tf.tensor1d([0.5]), tf.tensor1d([0.5])], 0.01, tf.scalar(0.5));
    // Step 1: m/c1 = g f, v/c2 = (g f)^2, so the update is lr * scale * sign(g) (up to epsilon).
    expect(a.dataSync()[0]).toBeCloseTo(1 - 0.01, 6);
    expect(b.dataSync()[0]).toBeCloseTo(1 - 0.3, 6);
    expect(() => new AdamW([a], ADAMW_DEFAULTS, [1, 2])).toThrow(/2 learning-rate scales for 1 variables/);
    opt.dispose();
  });

  it('skips a step on the device when the loss or the gradient is not finite, and takes the next one', async () => {
    const x = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW([x]);
    for (const [grad, loss] of [
      [[NaN, 1], 0.5],
      [[0.5, 1], Infinity],
    ] as const) {
      const g = tf.tensor1d([...grad]);
      const lossTensor = tf.scalar(loss);
      const clip = globalNormClip([g], 1, lossTensor);
      expect((await clip.factor.data())[0]).toBe(0);
      opt.apply([g], 0.1, clip.factor);
      expect(Array.from(await x.data())).toEqual([1, -2]);
      expect([...opt.state().values()].map((t) => Array.from(t.dataSync()))).toEqual([
        [0, 0],
        [0, 0],
      ]);
      tf.dispose([g, lossTensor, clip.factor, clip.norm]);
    }
    const g = tf.tensor1d([0.5, 1]);
    const clip = globalNormClip([g], 1, tf.scalar(0.5));
    const f = 1 / Math.hypot(0.5, 1);
    expect((await clip.factor.data())[0]).toBeCloseTo(f, 5);
    opt.apply([g], 0.1, clip.factor);
    // The first real update, by hand; the skipped steps still counted for the bias corrections (t = 3).
    const byHand = [1, -2].map((x0, i) => {
      const gf = [0.5, 1][i] * f;
      const [m, v] = [0.1 * gf, 0.001 * gf * gf];
      return x0 - (0.1 * (m / (1 - 0.9 ** 3))) / (Math.sqrt(v / (1 - 0.999 ** 3)) + 1e-8);
    });
    expect(Array.from(await x.data())).toEqual(byHand.map((e) => expect.closeTo(e, 5)));
    opt.dispose();
    x.dispose();
  });

  it('clips by global norm, and leaves small gradients alone', () => {
    const { grads, norm } = clipByGlobalNorm([tf.tensor1d([3, 0]), tf.tensor1d([0, 4])], 1);
    expect(norm.dataSync()[0]).toBeCloseTo(5, 5);
    expect(Array.from(grads[0].dataSync())).toEqual([expect.closeTo(0.6, 5), 0]);
    expect(Array.from(grads[1].dataSync())).toEqual([0, expect.closeTo(0.8, 5)]);
    const small = clipByGlobalNorm([tf.tensor1d([0.3, 0.4])], 1);
    expect(Array.from(small.grads[0].dataSync())).toEqual([expect.closeTo(0.3, 6), expect.closeTo(0.4, 6)]);
  });
});

describe('schedule and metrics', () => {
  it('warms up linearly, then decays', () => {
    expect(learningRate(5, 1e-3, 10, 100, 'linear')).toBeCloseTo(5e-4);
    expect(learningRate(10, 1e-3, 10, 100, 'linear')).toBeCloseTo(1e-3);
    expect(learningRate(55, 1e-3, 10, 100, 'linear')).toBeCloseTo(5e-4);
    expect(learningRate(100, 1e-3, 10, 100, 'cosine')).toBeCloseTo(0);
    expect(learningRate(77, 1e-3, 10, 100, 'constant')).toBe(1e-3);
  });

  it('accuracy and macro-F1 on a worked example', () => {
    // labels 0,0,1,1,1 predicted 0,1,1,1,0: class 0 tp1 fp1 fn1 -> F1 .5; class 1 tp2 fp1 fn1 -> F1 2/3
    const m = classificationMetrics([0, 1, 1, 1, 0], [0, 0, 1, 1, 1], 2, 0.3);
    expect(m.accuracy).toBeCloseTo(0.6);
    expect(m.macroF1).toBeCloseTo((0.5 + 2 / 3) / 2);
  });
});
