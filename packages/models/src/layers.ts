import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { ownedVariable, runNorm, type HookRegistry, type LinearSite, type NormSite, type PassContext } from '@deltatune/core';

/** Building blocks shared by the backbones, in tfjs ops (all differentiable). */

export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, epsilon: number): Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta);
}

/** BERT's `gelu`: the exact, erf-based form. */
export function geluErf(x: Tensor): Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
}

/** GPT-2's `gelu_new`: the tanh approximation. */
export function geluTanh(x: Tensor): Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
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

/** A layer norm at a norm site, its hooks applied. */
export function runLayerNorm(hooks: HookRegistry, site: NormSite, x: Tensor, epsilon: number, ctx: PassContext): Tensor {
  return runNorm(hooks, site, layerNorm(x, site.gamma, site.beta, epsilon), ctx);
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

/** Splits `[b, s, h*d]` into heads `[b, h, s, d]`. */
export function splitHeads(x: Tensor, numHeads: number): Tensor {
  const [b, s, width] = x.shape as number[];
  return tf.transpose(tf.reshape(x, [b, s, numHeads, width / numHeads]), [0, 2, 1, 3]);
}

/** Scaled dot-product attention over heads; returns `[batch, seq, heads * headDim]`. */
export function multiHeadAttention(a: AttentionInputs): Tensor {
  const [b, s, width] = a.query.shape as number[];
  let q = splitHeads(a.query, a.numHeads);
  let k = splitHeads(a.key, a.numHeads);
  let v = splitHeads(a.value, a.numHeads);
  const extraLength = a.extra?.length ?? 0;
  if (a.extra) {
    k = tf.concat([a.extra.key, k], 2);
    v = tf.concat([a.extra.value, v], 2);
  }
  q = tf.mul(q, a.scale);
  const scores = tf.matMul(q, k, false, true); // [b, h, s, extra + s]
  const bias = attentionBias(a.keyMask, s, extraLength, a.causal);
  const probs = tf.softmax(tf.add(scores, bias));
  const context = tf.matMul(probs, v); // [b, h, s, d]
  return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, s, width]);
}

const NEG = -1e9;

/** Additive mask `[b, 1, s|1, extra + s]`: 0 where a query may look, -1e9 where it may not. */
export function attentionBias(keyMask: Tensor, seq: number, extraLength: number, causal: boolean): Tensor {
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
}
