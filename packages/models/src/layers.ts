import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  attentionBias,
  attentionContext,
  attentionScores,
  attentionSoftmax,
  gelu,
  layerNorm,
  mergeHeads,
  ownedVariable,
  runNorm,
  splitHeads,
  useFused,
  type HookRegistry,
  type LinearSite,
  type NormSite,
  type PassContext,
  FUSED_KERNELS,
} from '@deltatune/core';

/**
 * Building blocks shared by the backbones, in tfjs ops (all differentiable). Layer norm, FUSED_KERNELS.gelu and
 * attention come from core: fused kernels where the backend has them (webgpu, cpu), plain ops
 * elsewhere.
 */
export { layerNorm, attentionBias };

/** BERT's `gelu`: the exact, erf-based form. */
export function geluErf(x: Tensor): Tensor {
  return gelu(x, 'erf');
}

/** GPT-2's `gelu_new`: the tanh approximation. */
export function geluTanh(x: Tensor): Tensor {
  return gelu(x, 'tanh');
}

/** A frozen base parameter: a variable that training never updates unless the user asks. */
export function frozen(value: Tensor): Variable {
  return ownedVariable(value, false);
}

export function linearSite(name: string, kernel: Variable, bias: Variable | undefined, layer?: number): LinearSite {
  return { kind: 'linear', name, layer, inFeatures: kernel.shape[0] as number, outFeatures: kernel.shape[1] as number, kernel, bias };
}

export function normSite(name: string, gamma: Variable, beta: Variable, layer?: number): NormSite {
  return { kind: 'norm', name, layer, hidden: gamma.shape[0] as number, gamma, beta };
}

/** A layer norm (of `x`, or of `x + residual`) at a norm site, its hooks applied. */
export function runLayerNorm(hooks: HookRegistry, site: NormSite, x: Tensor, epsilon: number, ctx: PassContext, residual?: Tensor): Tensor {
  return runNorm(hooks, site, layerNorm(x, site.gamma, site.beta, epsilon, residual), ctx);
}

export interface AttentionInputs {
  /** `[batch, seq, heads * headDim]` each. */
  readonly query: Tensor;
  readonly key: Tensor;
  readonly value: Tensor;
  readonly numHeads: number;
  /** Multiplies the scores; 1/sqrt(headDim) for all our backbones. */
  readonly scale: number;
  /** `[batch, seq]` float 1/0: which keys are real tokens. */
  readonly keyMask: Tensor;
  readonly causal: boolean;
  /** Keys/values placed before the real positions (prefix tuning), `[batch, heads, extra, headDim]`, always visible. */
  readonly extra?: { key: Tensor; value: Tensor; length: number } | null;
}

/** Scaled dot-product attention over heads; returns `[batch, seq, heads * headDim]`. */
export function multiHeadAttention(a: AttentionInputs): Tensor {
  const extraLength = a.extra?.length ?? 0;
  const masking = { heads: a.numHeads, scale: a.scale, extra: extraLength, causal: a.causal };
  // Fused (webgpu, cpu): heads stay in the projections' layout, 3 kernels forward instead of 7.
  if (useFused(FUSED_KERNELS.attentionScores) && useFused(FUSED_KERNELS.attentionContext) && useFused(FUSED_KERNELS.attentionSoftmax)) {
    const key = a.extra ? tf.concat([mergeHeads(a.extra.key), a.key], 1) : a.key;
    const value = a.extra ? tf.concat([mergeHeads(a.extra.value), a.value], 1) : a.value;
    const probs = attentionSoftmax(attentionScores(a.query, key, a.numHeads), a.keyMask, masking);
    return attentionContext(probs, value, a.numHeads);
  }
  const [b, s, width] = a.query.shape as number[];
  const q = splitHeads(a.query, a.numHeads);
  let k = splitHeads(a.key, a.numHeads);
  let v = splitHeads(a.value, a.numHeads);
  if (a.extra) {
    k = tf.concat([a.extra.key, k], 2);
    v = tf.concat([a.extra.value, v], 2);
  }
  // Scaling q (d wide) rather than the scores (s wide), as the reference implementations do.
  const scores = tf.matMul(tf.mul(q, a.scale), k, false, true);
  const probs = tf.softmax(tf.add(scores, attentionBias(a.keyMask, s, extraLength, a.causal)));
  const context = tf.matMul(probs, v); // [b, h, s, d]
  return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, s, width]);
}
