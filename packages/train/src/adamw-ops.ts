import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, runFused, useFused } from '@deltatune/core';

/**
 * An AdamW step is ~14 elementwise kernels per variable in plain ops, and clipping by the global
 * norm 3 more (square, sum, scale). Fused (`@deltatune/kernels`): one kernel for the squared norm,
 * one per moment (the clip factor folded in), one for the parameter: 4 per variable. The moments
 * stay two tensors, so checkpoints are the same with and without fusion and a run resumes across
 * backends.
 *
 * A factor of 0 (or below) means "skip this step": moments and parameter come back unchanged. The
 * trainer sets it when the loss or the gradient norm is not finite, on the device, so it need not
 * read the loss back before queueing the next step.
 */
export interface AdamWStep {
  readonly lr: number;
  /** 1 - beta1^t and 1 - beta2^t: the bias corrections. */
  readonly c1: number;
  readonly c2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
}

/** sum(x^2) as a scalar. */
export function sumOfSquares(x: Tensor): Tensor {
  if (useFused(FUSED_KERNELS.sumOfSquares)) return runFused(FUSED_KERNELS.sumOfSquares, { x });
  return tf.tidy(() => tf.sum(tf.square(x)));
}

/**
 * The first (`second: false`: beta m + (1 - beta) f g) or second (beta v + (1 - beta) (f g)^2)
 * moment after one step, where f is the scalar clip factor (f <= 0: `moment` unchanged).
 */
export function adamwMoment(moment: Tensor, grad: Tensor, factor: Tensor, beta: number, second: boolean): Tensor {
  if (useFused(FUSED_KERNELS.adamwMoment)) return runFused(FUSED_KERNELS.adamwMoment, { moment, grad, factor }, { beta, second });
  return tf.tidy(() => {
    const g = tf.mul(grad, factor);
    return unlessSkipped(factor, tf.add(tf.mul(moment, beta), tf.mul(second ? tf.square(g) : g, 1 - beta)), moment);
  });
}

/** p - lr ((m / c1) / (sqrt(v / c2) + eps) + wd p), or `param` unchanged when `factor` <= 0. */
export function adamwParam(param: Tensor, m: Tensor, v: Tensor, factor: Tensor, s: AdamWStep): Tensor {
  if (useFused(FUSED_KERNELS.adamwParam)) return runFused(FUSED_KERNELS.adamwParam, { param, m, v, factor }, { ...s });
  return tf.tidy(() => {
    let update = tf.div(tf.div(m, s.c1), tf.add(tf.sqrt(tf.div(v, s.c2)), s.epsilon));
    if (s.weightDecay > 0) update = tf.add(update, tf.mul(param, s.weightDecay));
    return unlessSkipped(factor, tf.sub(param, tf.mul(update, s.lr)), param);
  });
}

/** `next` where the step applies (factor > 0), else `previous` (a select, so a NaN in `next` does not leak). */
function unlessSkipped(factor: Tensor, next: Tensor, previous: Tensor): Tensor {
  return tf.where(tf.greater(factor, 0), next, previous);
}
