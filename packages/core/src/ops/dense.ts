import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, runFused, useFused } from './fused';

/**
 * `x W + b`. Fused, the bias is added in the matmul's epilogue and only the gradients the tape
 * asks for are computed (a frozen backbone's W needs none).
 */
export function dense(x: Tensor, kernel: Tensor, bias?: Tensor): Tensor {
  if (!bias || !useFused(FUSED_KERNELS.dense)) {
    const y = tf.matMul(x, kernel);
    return bias ? tf.add(y, bias) : y;
  }
  return runFused(FUSED_KERNELS.dense, { x, kernel, bias });
}

/** `y + scale * h b`, all 2-D (LoRA's update, with `h = x A`). */
export function lowRankUpdate(y: Tensor, h: Tensor, b: Tensor, scale: number): Tensor {
  if (!useFused(FUSED_KERNELS.lowRankUpdate)) return tf.tidy(() => tf.add(y, tf.mul(tf.matMul(h, b), scale)));
  return runFused(FUSED_KERNELS.lowRankUpdate, { a: h, b, addend: y }, { scale, transposeA: false, transposeB: false });
}
