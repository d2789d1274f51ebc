import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '@deltatune/core';
import { chunks, disposeBatch, makeBatch, targetTokens, type TokenizedSplit } from './batches';
import { causalLmLoss, crossEntropy, tokenLogits, type ClassificationHead } from './head';
import { classificationMetrics, type ClassificationMetrics, type LmMetrics } from './metrics';

// Reads are asynchronous throughout: WebGPU in Node cannot read a GPU buffer synchronously.

/** Pooled backbone outputs for a whole split, `[n, hidden]` (no gradients; the caller disposes it). */
export function pooledFeatures(
  backbone: Backbone,
  split: TokenizedSplit,
  batchSize: number,
  padId: number,
  onBatch?: (done: number) => void,
): tf.Tensor2D {
  const parts: tf.Tensor[] = [];
  let done = 0;
  for (const idx of chunks(split.ids.length, batchSize)) {
    const batch = makeBatch(split, idx, padId);
    const out = backbone.forward(batch.inputs);
    parts.push(out.pooled);
    for (const t of [out.lastHiddenState, out.logits, out.embedding]) t?.dispose();
    disposeBatch(batch);
    done += idx.length;
    onBatch?.(done);
  }
  const all = tf.concat(parts) as tf.Tensor2D;
  tf.dispose(parts);
  return all;
}

/** Accuracy, macro-F1 and loss of head(pooled) over precomputed features. */
export async function evaluateFeatures(
  features: tf.Tensor2D,
  labels: Int32Array,
  head: ClassificationHead,
): Promise<ClassificationMetrics> {
  const [predicted, loss] = tf.tidy(() => {
    const logits = head.logits(features);
    const y = tf.tensor1d(labels, 'int32');
    return [tf.argMax(logits, 1), crossEntropy(logits, y)];
  });
  const metrics = classificationMetrics(await predicted.data(), labels, head.labels.length, (await loss.data())[0]);
  tf.dispose([predicted, loss]);
  return metrics;
}

/** Classification metrics of backbone (with its attached deltas) + head over a split. */
export async function evaluateClassification(
  backbone: Backbone,
  head: ClassificationHead,
  split: TokenizedSplit,
  batchSize: number,
  padId: number,
  onBatch?: (done: number) => void,
): Promise<ClassificationMetrics> {
  const features = pooledFeatures(backbone, split, batchSize, padId, onBatch);
  const metrics = await evaluateFeatures(features, split.labels, head);
  features.dispose();
  return metrics;
}

/**
 * Mean next-token loss and perplexity over a split (token-weighted). With a loss mask (instruction
 * tuning) only the masked tokens count: the held-out loss of the completions, not of the prompts.
 */
export async function evaluateLm(backbone: Backbone, split: TokenizedSplit, batchSize: number, padId: number): Promise<LmMetrics> {
  let totalLoss = 0;
  let totalTokens = 0;
  for (const idx of chunks(split.ids.length, batchSize)) {
    const batch = makeBatch(split, idx, padId);
    const tokens = idx.reduce((n, i) => n + targetTokens(split, i), 0);
    const loss = tf.tidy(() => {
      const out = backbone.forward(batch.inputs);
      return causalLmLoss(tokenLogits(out), batch.inputs.inputIds, batch.inputs.attentionMask, batch.lossMask);
    });
    totalLoss += (await loss.data())[0] * tokens;
    totalTokens += tokens;
    loss.dispose();
    disposeBatch(batch);
  }
  const mean = totalLoss / Math.max(1, totalTokens);
  return { loss: mean, perplexity: Math.exp(mean), examples: split.ids.length };
}
