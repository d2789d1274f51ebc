import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { ownedVariable } from '@deltatune/core';

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

  constructor(readonly variables: readonly Variable[], readonly options: AdamWOptions = ADAMW_DEFAULTS) {
    this.m = variables.map((x) => ownedVariable(tf.zerosLike(x), false));
    this.v = variables.map((x) => ownedVariable(tf.zerosLike(x), false));
  }

  /** One update with `grads` (same order as `variables`) at learning rate `lr`. */
  apply(grads: readonly Tensor[], lr: number): void {
    this.step++;
    const { beta1, beta2, epsilon, weightDecay } = this.options;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      this.variables.forEach((x, i) => {
        const g = grads[i];
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        let update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon));
        if (weightDecay > 0) update = tf.add(update, tf.mul(x, weightDecay));
        x.assign(tf.sub(x, tf.mul(update, lr)));
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
 * Scales gradients so their global L2 norm is at most `maxNorm` (no scaling when under). Returns
 * new tensors and the norm before clipping, as a scalar tensor (read it with the loss: one sync).
 */
export function clipByGlobalNorm(grads: readonly Tensor[], maxNorm: number): { grads: Tensor[]; norm: Tensor } {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
    if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) return { grads: grads.map((g) => tf.clone(g)), norm };
    const factor = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
    return { grads: grads.map((g) => tf.mul(g, factor)), norm };
  });
}
