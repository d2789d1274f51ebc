// Test helpers for the webgpu backend. Whether this machine has a WebGPU adapter (a GPU, or Mesa's
// lavapipe >= 24 on the CPU: see docs/benchmarks.md): tests that need one skip without it, unless
// DELTATUNE_REQUIRE_WEBGPU=1 (set by .ci/run), where a missing adapter fails them instead, so a
// green CI means the WGSL kernels ran. Each test file runs in its own worker, so probing here
// leaves the other files on wasm.
import * as tf from '@tensorflow/tfjs-core';
import { DeltaTuneError } from '@deltatune/core';
import { selectBackend } from '@deltatune/backends';

/** DELTATUNE_REQUIRE_WEBGPU=1: the webgpu tests must run; without an adapter they fail, not skip. */
export const webgpuRequired = (): boolean => process.env.DELTATUNE_REQUIRE_WEBGPU === '1';

/** The failure for a required but missing adapter: why there is none, and how to allow that. */
export function webgpuRequiredError(reason: string): Error {
  return new Error(
    `DELTATUNE_REQUIRE_WEBGPU=1, but the webgpu backend is not available, so the webgpu tests cannot run: ${reason}\n` +
      'fix: give this machine a WebGPU adapter (Debian 12: bash scripts/install-lavapipe.sh), or let the webgpu tests skip: ' +
      'unset DELTATUNE_REQUIRE_WEBGPU (CI: run .ci/run with DELTATUNE_ALLOW_NO_WEBGPU=1)',
  );
}

/**
 * Undefined when the webgpu backend starts here, else why not (the tests that need it skip). With
 * DELTATUNE_REQUIRE_WEBGPU=1 a missing backend throws `webgpuRequiredError` instead.
 */
export async function probeWebgpu(): Promise<string | undefined> {
  try {
    await selectBackend('webgpu');
    return undefined;
  } catch (e) {
    if (!(e instanceof DeltaTuneError)) throw e;
    if (webgpuRequired()) throw webgpuRequiredError(e.message);
    return e.message;
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
