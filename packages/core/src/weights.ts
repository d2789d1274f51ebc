import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';

/** Copies of some base weights, to put back exactly: what merging methods unmerge with. */
export interface WeightSnapshot {
  /** Assigns every saved value back (bit for bit) and frees the copies. */
  restore(): void;
  /** Frees the copies without restoring. */
  dispose(): void;
}

/**
 * Saves the current values of `weights`. Undoing a merge arithmetically (subtracting LoRA's update,
 * dividing by IA3's scale) leaves float rounding behind, and divides by zero when a scale reached 0;
 * restoring a copy is exact. Costs one copy of each merged weight while merged.
 */
export function snapshotWeights(weights: Iterable<Variable>): WeightSnapshot {
  const saved = [...new Set(weights)].map((v): [Variable, Tensor] => [v, tf.clone(v)]);
  let live = true;
  const dispose = () => {
    if (!live) return;
    live = false;
    for (const [, copy] of saved) copy.dispose();
  };
  return {
    restore() {
      if (!live) throw new Error('snapshotWeights: this snapshot was already restored or disposed');
      for (const [v, copy] of saved) v.assign(copy);
      dispose();
    },
    dispose,
  };
}
