import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

/** The PyTorch/PEFT reference fixtures, copied into the repo from shared/fixtures/peft-reference. */
export const FIXTURES = fileURLToPath(new URL('../../../fixtures/peft-reference/', import.meta.url));

export function reference(name: 'bert' | 'gpt2'): any {
  return JSON.parse(readFileSync(`${FIXTURES}${name}-reference.json`, 'utf8'));
}

/** Largest absolute difference between a tensor and nested reference arrays (a sync read: not on webgpu). */
export function maxAbsDiff(actual: tf.Tensor, expected: unknown): number {
  const e = tf.tensor(expected as number[]);
  const d = tf.max(tf.abs(tf.sub(actual, e))).dataSync()[0];
  e.dispose();
  return d;
}
