import * as tf from '@tensorflow/tfjs-core';

/** Kernels that only relabel a buffer (no GPU dispatch, no copy on any tfjs backend). */
const NO_OP_KERNELS = new Set(['Reshape', 'Identity']);

/**
 * Counts what a function actually dispatches. On webgpu: every compute pass the backend records
 * (its `recordAndSubmit`, wrapped for the call). Elsewhere: the kernels tfjs runs, less those that
 * only relabel a buffer. tf.profile's kernel list counts both kinds, and kernels the webgpu
 * backend forwards to the CPU for tiny inputs.
 */
export interface DispatchCount {
  dispatches: number;
  kernels: number;
  peakBytes: number;
  byKind: Record<string, number>;
  /**
   * GPU (or CPU) milliseconds by tfjs kernel name, largest first, where the backend times kernels
   * (webgpu with timestamp queries, wasm, cpu).
   */
  msByKernel: Record<string, number>;
}

function tally(totals: Map<string, number>, key: string, amount: number): void {
  totals.set(key, (totals.get(key) ?? 0) + amount);
}

export async function countDispatches(f: () => Promise<void>): Promise<DispatchCount> {
  type Program = { constructor: { name: string }; label?: string };
  const backend = tf.backend() as unknown as { recordAndSubmit?: (program: Program, ...rest: unknown[]) => unknown };
  // tfjs's programs are classes (named by their class); deltatune's fused ones carry a label.
  const kindOf = (p: Program) => p.label ?? p.constructor.name;
  const byKind = new Map<string, number>();
  const original = backend.recordAndSubmit;
  let dispatches = 0;
  if (original) {
    backend.recordAndSubmit = function (program, ...rest) {
      dispatches++;
      tally(byKind, kindOf(program), 1);
      return original.call(this, program, ...rest);
    };
  }
  try {
    const profile = await tf.profile(f);
    const working = profile.kernels.filter((k) => !NO_OP_KERNELS.has(k.name));
    if (!original) {
      dispatches = working.length;
      for (const k of working) tally(byKind, k.name, 1);
    }
    const ms = new Map<string, number>();
    for (const k of profile.kernels) {
      const t = await k.kernelTimeMs;
      if (typeof t === 'number' && t > 0) tally(ms, k.name, t);
    }
    const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]));
    return { dispatches, kernels: profile.kernels.length, peakBytes: profile.peakBytes, byKind: sorted(byKind), msByKernel: sorted(ms) };
  } finally {
    if (original) backend.recordAndSubmit = original;
  }
}
