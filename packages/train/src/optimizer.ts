import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { addMany, ownedVariable } from '@deltatune/core';
import { adamwMoment, adamwParam, sumOfSquares } from './adamw-ops';

export interface AdamWOptions {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Decoupled weight decay (Loshchilov & Hutter); 0 gives plain Adam. */
  readonly weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0 };

/**
 * AdamW over a fixed list of variables, with its state (moments and step) exposed by name so a
 * checkpoint can save it and `--resume` continue exactly.
 */
export class AdamW {
  private readonly m: Variable[];
  private readonly v: Variable[];
  step = 0;

  /**
   * `lrScales[i]` multiplies the learning rate of `variables[i]` (per-delta learning rates); all 1
   * when absent.
   */
  constructor(
    readonly variables: readonly Variable[],
    readonly options: AdamWOptions = ADAMW_DEFAULTS,
    private readonly lrScales: readonly number[] = variables.map(() => 1),
  ) {
    if (lrScales.length !== variables.length)
      throw new Error(`AdamW: ${lrScales.length} learning-rate scales for ${variables.length} variables`);
    this.m = variables.map((x) => ownedVariable(tf.zerosLike(x), false));
    this.v = variables.map((x) => ownedVariable(tf.zerosLike(x), false));
  }

  /**
   * One update with `grads` (same order as `variables`) at learning rate `lr`, the gradients first
   * multiplied by `factor` (a scalar tensor: the clip factor of `globalNormClip`). A factor of 0
   * skips the update on the device (every variable and moment stays as it was; the step count
   * still advances): `globalNormClip` gives 0 for a non-finite loss or gradient. Each step is 3
   * fused kernels per variable on backends that have them (see core's fused kernels).
   */
  apply(grads: readonly Tensor[], lr: number, factor?: Tensor): void {
    this.step++;
    const { beta1, beta2, epsilon, weightDecay } = this.options;
    const corrections = { c1: 1 - beta1 ** this.step, c2: 1 - beta2 ** this.step, epsilon, weightDecay };
    tf.tidy(() => {
      const f = factor ?? tf.scalar(1);
      this.variables.forEach((x, i) => {
        const m = adamwMoment(this.m[i], grads[i], f, beta1, false);
        const v = adamwMoment(this.v[i], grads[i], f, beta2, true);
        this.m[i].assign(m);
        this.v[i].assign(v);
        x.assign(adamwParam(x, m, v, f, { ...corrections, lr: lr * this.lrScales[i] }));
      });
    });
  }

  /** State tensors by name (`m.<i>`, `v.<i>`), for checkpoints. */
  state(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.m.forEach((t, i) => out.set(`m.${i}`, t));
    this.v.forEach((t, i) => out.set(`v.${i}`, t));
    return out;
  }

  loadState(tensors: ReadonlyMap<string, Tensor>, step: number): void {
    this.m.forEach((t, i) => t.assign(tensors.get(`m.${i}`)!));
    this.v.forEach((t, i) => t.assign(tensors.get(`v.${i}`)!));
    this.step = step;
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}

/**
 * The global L2 norm of `grads` and the factor that scales them to at most `maxNorm`
 * (min(1, maxNorm / (norm + 1e-6)); 1 when `maxNorm` is 0 or infinite), as scalar tensors: the
 * optimizer folds the factor into its update instead of writing clipped copies. The factor is 0
 * when the norm, or `loss` when given, is not finite: AdamW then skips the step. Deciding that on
 * the device lets the trainer queue the next step before the loss is read back.
 */
export function globalNormClip(grads: readonly Tensor[], maxNorm: number, loss?: Tensor): { factor: Tensor; norm: Tensor } {
  return tf.tidy(() => {
    const norm = tf.sqrt(addMany(grads.map((g) => sumOfSquares(g))));
    const clip = !(maxNorm > 0) || !Number.isFinite(maxNorm) ? tf.scalar(1) : tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
    const finite = loss ? tf.logicalAnd(tf.isFinite(norm), tf.isFinite(tf.reshape(loss, []))) : tf.isFinite(norm);
    return { factor: tf.where(finite, clip, tf.scalar(0)), norm };
  });
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (no scaling when under). Returns
 * new tensors and the norm before clipping, as a scalar tensor (read it with the loss: one sync).
 */
export function clipByGlobalNorm(grads: readonly Tensor[], maxNorm: number): { grads: Tensor[]; norm: Tensor } {
  return tf.tidy(() => {
    const { factor, norm } = globalNormClip(grads, maxNorm);
    return { grads: grads.map((g) => tf.mul(g, factor)), norm };
  });
}
