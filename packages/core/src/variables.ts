import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';

/**
 * A variable that takes ownership of its initial value: `tf.variable` copies the tensor it is
 * given, so the initial value would otherwise stay alive (one leaked tensor per variable).
 */
export function ownedVariable(initial: Tensor, trainable = true): Variable {
  const v = tf.variable(initial, trainable);
  initial.dispose();
  return v;
}
