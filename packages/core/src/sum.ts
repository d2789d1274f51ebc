import * as tf from '@tensorflow/tfjs-core';

/**
 * WebGPU allows 8 storage buffers per shader stage unless a device asks for more, and tfjs's
 * webgpu AddN binds every input plus its output in one shader: `tf.addN` of 8 or more tensors makes
 * an invalid pipeline there (found with a 42-gradient global norm). Groups of 7 stay within it.
 */
const MAX_ADDN_INPUTS = 7;

/** Element-wise sum of same-shaped tensors, in as few kernels as every backend allows. */
export function addMany(tensors: readonly tf.Tensor[]): tf.Tensor {
  if (tensors.length === 0) throw new Error('addMany needs at least one tensor');
  return tf.tidy(() => {
    let level: tf.Tensor[] = [...tensors];
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += MAX_ADDN_INPUTS) {
        const group = level.slice(i, i + MAX_ADDN_INPUTS);
        next.push(group.length === 1 ? group[0] : tf.addN(group));
      }
      level = next;
    }
    return level[0] === tensors[0] ? tf.clone(level[0]) : level[0];
  });
}
