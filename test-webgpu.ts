// Whether this machine has a WebGPU adapter (a GPU, or Mesa's lavapipe >= 24 on the CPU: see
// docs/benchmarks.md). Tests that need one skip without it; each test file runs in its own worker,
// so probing here leaves the other files on wasm.
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
