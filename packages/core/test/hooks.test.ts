import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { HookRegistry, runLinear, type LinearSite } from '@deltatune/core';

function site(): LinearSite {
  return {
    kind: 'linear',
    name: 'encoder.layer.0.attention.self.query',
    layer: 0,
    inFeatures: 2,
    outFeatures: 2,
    kernel: tf.variable(
      tf.tensor2d([
        [1, 2],
        [3, 4],
      ]),
      false,
    ),
    bias: tf.variable(tf.tensor1d([0.5, -0.5]), false),
  };
}
const ctx = { training: false };

describe('HookRegistry', () => {
  it('runs hooks by order, then owner name, never by registration order', () => {
    const calls: string[] = [];
    const reg = new HookRegistry();
    const tag = (name: string) => ({ output: (_x: tf.Tensor, y: tf.Tensor) => (calls.push(name), y) });
    reg.add('linear', 's', tag('b-default'), { owner: 'b' });
    reg.add('linear', 's', tag('late'), { owner: 'a', order: 10 });
    reg.add('linear', 's', tag('a-default'), { owner: 'a' });
    reg.add('linear', 's', tag('early'), { owner: 'z', order: -5 });
    for (const h of reg.at('linear', 's')) h.output!(tf.scalar(0), tf.scalar(0), {} as LinearSite, ctx);
    expect(calls).toEqual(['early', 'a-default', 'b-default', 'late']);
    expect(reg.ownersAt('linear', 's')).toEqual(['z', 'a', 'b', 'a']);
  });

  it('unregister removes exactly its own hook, and twice is harmless', () => {
    const reg = new HookRegistry();
    const one = reg.add('sublayer', 's', ({ output }) => output);
    reg.add('sublayer', 's', ({ output }) => output);
    expect(reg.size).toBe(2);
    one();
    one();
    expect(reg.size).toBe(1);
    expect(reg.at('sublayer', 'other')).toEqual([]);
  });

  it('detach is exact: outputs after unregistering equal those before registering, bit for bit', () => {
    const s = site();
    const reg = new HookRegistry();
    const x = tf.tensor2d([
      [0.1, 0.2],
      [0.3, 0.7],
    ]);
    const before = runLinear(reg, s, x, ctx).dataSync();
    const off = reg.add('linear', s.name, {
      input: (v) => tf.mul(v, 3),
      output: (_x, y) => tf.add(y, 1),
    });
    const during = runLinear(reg, s, x, ctx).dataSync();
    expect(Array.from(during)).not.toEqual(Array.from(before));
    // input hook scales x by 3; output hook adds 1: (3x) W + b + 1
    expect(Array.from(during)).toEqual(Array.from(tf.add(tf.add(tf.matMul(tf.mul(x, 3), s.kernel), s.bias!), 1).dataSync()));
    off();
    expect(Array.from(runLinear(reg, s, x, ctx).dataSync())).toEqual(Array.from(before));
  });
});
