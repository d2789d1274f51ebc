import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { createRng, DeltaTuneError, ownedVariable, uniform, type BackboneOutputs } from '@deltatune/core';

/**
 * The sequence-classification head: one dense layer over the backbone's pooled output. It trains
 * with the delta and is saved beside it (PEFT calls this `modules_to_save`).
 */
export class ClassificationHead {
  readonly weight: Variable;
  readonly bias: Variable;

  constructor(
    readonly hidden: number,
    readonly labels: readonly string[],
    seed: number,
  ) {
    const bound = 1 / Math.sqrt(hidden);
    this.weight = ownedVariable(uniform(createRng(seed ^ 0x5eed), [hidden, labels.length], -bound, bound));
    this.bias = ownedVariable(tf.zeros([labels.length]));
  }

  get variables(): Variable[] {
    return [this.weight, this.bias];
  }

  logits(pooled: Tensor): Tensor {
    return tf.add(tf.matMul(pooled as tf.Tensor2D, this.weight), this.bias);
  }

  /** Saved names: `classifier.weight` `[hidden, labels]`, `classifier.bias`. */
  tensors(): Map<string, Tensor> {
    return new Map<string, Tensor>([
      ['classifier.weight', this.weight],
      ['classifier.bias', this.bias],
    ]);
  }

  load(tensors: ReadonlyMap<string, Tensor>): void {
    this.weight.assign(tensors.get('classifier.weight')!);
    this.bias.assign(tensors.get('classifier.bias')!);
  }

  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
  }
}

/** Mean softmax cross-entropy of integer labels. */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const logProbs = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(logProbs, tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1] as number)), 1);
  return tf.neg(tf.mean(picked));
}

/**
 * Mean next-token cross-entropy over real positions: what perplexity is built from. `lossMask`
 * (`[batch, seq]`, 1 where a token is a target: instruction tuning's completion tokens) narrows the
 * mean to those tokens; it is shifted as the targets are, so `lossMask[t]` says whether token `t`
 * (predicted from position `t - 1`) counts. Without it every real token after the first does.
 */
/**
 * The logits of the input's own tokens: a prompt-tuning prompt puts its virtual positions in
 * front (`prependedPositions`), which have no next token in the input to predict.
 */
export function tokenLogits(out: BackboneOutputs): Tensor {
  if (!out.logits)
    throw new DeltaTuneError('this backbone has no language-model head', 'train --task lm or sft on a decoder (GPT-2, Llama, Qwen...)');
  return out.prependedPositions > 0 ? tf.slice(out.logits, [0, out.prependedPositions, 0]) : out.logits;
}

export function causalLmLoss(logits: Tensor, inputIds: Tensor, attentionMask: Tensor, lossMask?: Tensor): Tensor {
  const [b, s, v] = logits.shape as number[];
  const predicted = tf.slice(logits, [0, 0, 0], [b, s - 1, v]);
  const targets = tf.slice(tf.cast(inputIds, 'int32'), [0, 1], [b, s - 1]);
  const real = tf.cast(tf.slice(attentionMask, [0, 1], [b, s - 1]), 'float32');
  const mask = lossMask ? tf.mul(real, tf.cast(tf.slice(lossMask, [0, 1], [b, s - 1]), 'float32')) : real;
  // log p(target) = logit[target] - logsumexp(logits), the target's logit gathered by its flat
  // index: a one-hot over the vocabulary would add two [b, s, vocab] tensors (0.6 GB at 16 x 32
  // tokens of Qwen's 151680 ids) to the step.
  const rows = b * (s - 1);
  const flat = tf.reshape(predicted, [rows, v]);
  const offsets = tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(v, 'int32'));
  const targetLogits = tf.gather(tf.reshape(flat, [rows * v]), tf.add(offsets, tf.reshape(targets, [rows])));
  const picked = tf.reshape(tf.sub(targetLogits, tf.logSumExp(flat, 1)), [b, s - 1]);
  return tf.neg(tf.div(tf.sum(tf.mul(picked, mask)), tf.maximum(tf.sum(mask), 1)));
}
