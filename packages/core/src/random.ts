import * as tf from '@tensorflow/tfjs-core';

/**
 * A seeded generator (mulberry32) for initialisation and shuffling: the same seed gives the same
 * numbers on every backend, which tfjs's own random ops do not promise.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** A fresh generator derived from this one (for one variable, one split...). */
  fork(): Rng;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, fork: () => createRng(Math.floor(next() * 4294967296)) };
}

export function uniform(rng: Rng, shape: number[], low: number, high: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = low + (high - low) * rng.next();
  return tf.tensor(data, shape, 'float32');
}

export function normal(rng: Rng, shape: number[], std: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // Box-Muller: two normals from two uniforms.
    const u = Math.max(rng.next(), 1e-12);
    const v = rng.next();
    const r = Math.sqrt(-2 * Math.log(u)) * std;
    data[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) data[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return tf.tensor(data, shape, 'float32');
}

/** PyTorch's default `Linear` init (`kaiming_uniform_(a=sqrt(5))`): U(-1/sqrt(fanIn), 1/sqrt(fanIn)). */
export function kaimingUniform(rng: Rng, shape: number[], fanIn: number): tf.Tensor {
  const bound = 1 / Math.sqrt(fanIn);
  return uniform(rng, shape, -bound, bound);
}

/** Fisher-Yates shuffle of indices 0..n-1. */
export function permutation(rng: Rng, n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
