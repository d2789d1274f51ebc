// Test helpers for the webgpu backend. Whether this machine has a WebGPU adapter (a GPU, or Mesa's
// lavapipe >= 24 on the CPU: see docs/benchmarks.md): tests that need one skip without it; each
// test file runs in its own worker, so probing here leaves the other files on wasm.
import * as tf from '@tensorflow/tfjs-core';
import { DeltaTuneError, selectBackend } from '@deltatune/core';

export async function probeWebgpu(): Promise<string | undefined> {
  try {
    await selectBackend('webgpu');
    return undefined;
  } catch (e) {
    if (e instanceof DeltaTuneError) return e.message;
    throw e;
  } finally {
    await tf.setBackend('wasm');
  }
}

/** Largest absolute difference between a tensor and nested arrays, read asynchronously (webgpu cannot read synchronously). */
export async function maxAbsDiffAsync(actual: tf.Tensor, expected: unknown): Promise<number> {
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(actual, tf.tensor(expected as number[])))));
  const value = (await d.data())[0];
  d.dispose();
  return value;
}
