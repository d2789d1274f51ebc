import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, runFused, useFused } from './fused';

/**
 * The two products of attention and its softmax, in the `[batch, seq, heads * headDim]` layout the
 * projections produce. Fused, the head split is index arithmetic inside the kernel (plain ops
 * transpose q, k and v, and back) and masking, scaling and softmax are one kernel each way.
 */

export interface AttentionMasking {
  readonly heads: number;
  /** Multiplies the scores (1/sqrt(headDim)). */
  readonly scale: number;
  /** Key positions before the real ones (prefix tuning), always visible. */
  readonly extra: number;
  readonly causal: boolean;
}

const NEG = -1e9;

/** `[b, s, h * d]` -> `[b, h, s, d]`. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, s, width] = x.shape as number[];
  return tf.transpose(tf.reshape(x, [b, s, heads, width / heads]), [0, 2, 1, 3]);
}

/** `[b, h, s, d]` -> `[b, s, h * d]`. */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, s, d] = x.shape as number[];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, s, h * d]);
}

/** Scores `[b, h, sq, sk]` = q_h k_h^T, unscaled (the softmax scales). */
export function attentionScores(q: Tensor, k: Tensor, heads: number): Tensor {
  if (useFused(FUSED_KERNELS.attentionScores)) return runFused(FUSED_KERNELS.attentionScores, { q, k }, { heads });
  return tf.tidy(() => tf.matMul(splitHeads(q, heads), splitHeads(k, heads), false, true));
}

/** Context `[b, sq, h * d]` = p_h v_h, or with `transposed`, `[b, sk, h * d]` = p_h^T v_h. */
export function attentionContext(p: Tensor, v: Tensor, heads: number, transposed = false): Tensor {
  if (useFused(FUSED_KERNELS.attentionContext)) return runFused(FUSED_KERNELS.attentionContext, { p, v }, { heads, transposed });
  return tf.tidy(() => mergeHeads(tf.matMul(p, splitHeads(v, heads), transposed, false)));
}

/** Additive mask `[b, 1, s|1, extra + s]`: 0 where a query may look, -1e9 where it may not. */
export function attentionBias(keyMask: Tensor, seq: number, extraLength: number, causal: boolean): Tensor {
  return tf.tidy(() => {
    const b = keyMask.shape[0] as number;
    let keys = tf.cast(keyMask, 'float32');
    if (extraLength > 0) keys = tf.concat([tf.ones([b, extraLength]), keys], 1);
    let allowed = tf.reshape(keys, [b, 1, 1, extraLength + seq]);
    if (causal) {
      const tri = tf.linalg.bandPart(tf.ones([seq, seq]), -1, 0); // j <= i
      const withExtra = extraLength > 0 ? tf.concat([tf.ones([seq, extraLength]), tri], 1) : tri;
      allowed = tf.mul(allowed, tf.reshape(withExtra, [1, 1, seq, extraLength + seq]));
    }
    return tf.mul(tf.sub(1, allowed), NEG);
  });
}

/** Probabilities: scale `scores` (`[b, heads, s, extra + s]`), mask keys (`keyMask` `[b, s]`, 1/0), softmax. */
export function attentionSoftmax(scores: Tensor, keyMask: Tensor, o: AttentionMasking): Tensor {
  if (useFused(FUSED_KERNELS.attentionSoftmax)) return runFused(FUSED_KERNELS.attentionSoftmax, { scores, keyMask }, { ...o });
  return tf.tidy(() => tf.softmax(tf.add(tf.mul(scores, o.scale), attentionBias(keyMask, scores.shape[2] as number, o.extra, o.causal))));
}
