import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { lowRankUpdate, type LinearHook } from '@deltatune/core';

/** PEFT's saved name of DoRA's magnitude (it strips the `.weight` of its `lora_magnitude_vector` module). */
export const MAGNITUDE = 'lora_magnitude_vector';

/**
 * The length of each output feature's weights: for an `[in, out]` kernel (tfjs layout) the norm over
 * axis 0, which is PEFT's `linalg.norm(W, dim=1)` on its `[out, in]` weight. Shape `[out]`.
 */
export function columnNorm(w: Tensor): Tensor {
  return tf.sqrt(tf.sum(tf.square(w), 0));
}

/** The value unchanged, with no gradient flowing back through it (PEFT's `weight_norm.detach()`). */
const stopGradient = tf.customGrad((x) => ({ value: tf.clone(x as Tensor), gradFunc: (dy) => tf.zerosLike(dy as Tensor) }));

/**
 * DoRA's per-output-feature factor `m / ||W + s A B||`, the norm a constant in the backward pass
 * (DoRA paper section 4.3, as PEFT does), so gradients reach `m`, `A` and `B` only through the direction.
 */
function magnitudeScale(kernel: Tensor, a: Tensor, b: Tensor, m: Tensor, scale: number): Tensor {
  const combined = tf.add(kernel, tf.mul(tf.matMul(a, b), scale));
  return tf.div(m, stopGradient(columnNorm(combined)) as Tensor);
}

/**
 * DoRA's effective weight `[in, out]`: `m * (W + s A B) / ||W + s A B||`, each column (output feature)
 * rescaled to length `m`. With `m` the column norms and B zero this is W bit for bit: `m / norm` is 1.
 */
export function doraWeight(kernel: Tensor, a: Tensor, b: Tensor, m: Tensor, scale: number): Tensor {
  const combined = tf.add(kernel, tf.mul(tf.matMul(a, b), scale));
  return tf.mul(combined, tf.div(m, stopGradient(columnNorm(combined)) as Tensor));
}

/**
 * DoRA's hook at one linear site. Without dropout (or outside training) it replaces the weight, so the
 * projection is `x W' + b`. With dropout in training it follows PEFT: the base output keeps the full
 * input and the DoRA correction reads the dropped one,
 * `y + (m / ||W + s A B|| - 1) * (x_d W) + m / ||W + s A B|| * s * (x_d A) B`.
 */
export function doraHook(a: Tensor, b: Tensor, m: Tensor, scale: number, dropout: number): LinearHook {
  // The weight the output hook corrects: what the weight hooks before this one made of the kernel this pass.
  let weight: Tensor | undefined;
  return {
    weight: (kernel, _site, ctx) => {
      if (ctx.training && dropout > 0) {
        weight = kernel;
        return kernel;
      }
      return doraWeight(kernel, a, b, m, scale);
    },
    output: (x, y, site, ctx) => {
      if (!(ctx.training && dropout > 0) || !weight) return y;
      const w = weight;
      weight = undefined;
      const dropped = tf.reshape(tf.dropout(x, dropout), [-1, site.inFeatures]) as tf.Tensor2D;
      const factor = magnitudeScale(w, a, b, m, scale);
      const flatY = tf.reshape(y, [-1, site.outFeatures]);
      const base = tf.add(flatY, tf.mul(tf.sub(factor, 1), tf.matMul(dropped, w)));
      const out = lowRankUpdate(base, tf.matMul(dropped, a), tf.mul(b, factor), scale);
      return tf.reshape(out, y.shape);
    },
  };
}
