import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, runFused, useFused } from './fused';

/** Layer norm of `x` (or of `x + residual`: a post-norm block's residual add) over the last axis. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, epsilon: number, residual?: Tensor): Tensor {
  const name = residual ? FUSED_KERNELS.addLayerNorm : FUSED_KERNELS.layerNorm;
  if (!useFused(name)) {
    return tf.tidy(() => {
      const input = residual ? tf.add(x, residual) : x;
      const { mean, variance } = tf.moments(input, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(input, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
    });
  }
  const cols = x.shape[x.rank - 1];
  const inputs: tf.NamedTensorMap = { x: tf.reshape(x, [-1, cols]), gamma, beta };
  if (residual) inputs.residual = tf.reshape(residual, [-1, cols]);
  return tf.reshape(runFused(name, inputs, { epsilon }), x.shape);
}

/** `erf` is BERT's exact GELU, `tanh` GPT-2's `gelu_new` approximation. */
export type GeluForm = 'erf' | 'tanh';

const TANH_C = Math.sqrt(2 / Math.PI);

export function gelu(x: Tensor, form: GeluForm): Tensor {
  if (useFused(FUSED_KERNELS.gelu)) return runFused(FUSED_KERNELS.gelu, { x }, { form });
  return tf.tidy(() => {
    if (form === 'erf') return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    const inner = tf.mul(TANH_C, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
  });
}
