import * as tf from '@tensorflow/tfjs-core';
import { createRng, permutation, type BackboneInputs } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import type { Example } from './datasets/types';
import type { StepBatch } from './train-step';

/** A split tokenized once: ids truncated to `maxLength`, with labels. */
export interface TokenizedSplit {
  readonly ids: readonly number[][];
  readonly labels: Int32Array;
  /**
   * Instruction tuning: per row, 1 where the token is a target the loss counts (the completion, an
   * assistant turn), 0 elsewhere; aligned with `ids`. Absent: every token after the first counts.
   */
  readonly lossMask?: readonly number[][];
}

export function tokenizeSplit(tokenizer: TextTokenizer, examples: readonly Example[], maxLength: number): TokenizedSplit {
  return {
    ids: examples.map((e) => {
      const ids = tokenizer.encodeOne(e.text).ids.slice(0, maxLength);
      return ids.length > 0 ? ids : [tokenizer.padId];
    }),
    labels: Int32Array.from(examples.map((e) => e.label)),
  };
}

/** Tensors for the rows `indices` of a split, padded to the batch's longest row. The caller disposes them. */
export function makeBatch(
  split: TokenizedSplit,
  indices: readonly number[],
  padId: number,
): { inputs: BackboneInputs; labels: tf.Tensor1D; lossMask?: tf.Tensor2D } {
  const width = Math.max(...indices.map((i) => split.ids[i].length));
  const ids = new Int32Array(indices.length * width).fill(padId);
  const mask = new Int32Array(indices.length * width);
  const lossMask = split.lossMask ? new Int32Array(indices.length * width) : undefined;
  indices.forEach((row, r) => {
    const seq = split.ids[row];
    ids.set(seq, r * width);
    mask.fill(1, r * width, r * width + seq.length);
    lossMask?.set(split.lossMask![row], r * width);
  });
  return {
    inputs: {
      inputIds: tf.tensor2d(ids, [indices.length, width], 'int32'),
      attentionMask: tf.tensor2d(mask, [indices.length, width], 'int32'),
    },
    labels: tf.tensor1d(
      indices.map((i) => split.labels[i]),
      'int32',
    ),
    ...(lossMask ? { lossMask: tf.tensor2d(lossMask, [indices.length, width], 'int32') } : {}),
  };
}

export function disposeBatch(b: { inputs: BackboneInputs; labels: tf.Tensor; lossMask?: tf.Tensor }): void {
  tf.dispose([b.inputs.inputIds, b.inputs.attentionMask, b.labels]);
  b.inputs.tokenTypeIds?.dispose();
  b.lossMask?.dispose();
}

/** Targets of a row the loss counts: its tokens after the first, only the masked ones where there is a loss mask. */
export function targetTokens(split: TokenizedSplit, row: number): number {
  const mask = split.lossMask?.[row];
  if (!mask) return Math.max(0, split.ids[row].length - 1);
  let n = 0;
  for (let t = 1; t < mask.length; t++) n += mask[t];
  return n;
}

/** Consecutive index chunks `[0..n)` of at most `size`. */
export function chunks(n: number, size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i += size) out.push(Array.from({ length: Math.min(size, n - i) }, (_, j) => i + j));
  return out;
}

/**
 * The rows of a `rows`-row train split that step `step` (from 0) trains on: each epoch is a
 * permutation drawn from the seed and the epoch, so a resumed run takes the batches an
 * uninterrupted one does.
 */
export function stepRows(seed: number, step: number, rows: number, batchSize: number): number[] {
  const stepsPerEpoch = Math.ceil(rows / batchSize);
  const epoch = Math.floor(step / stepsPerEpoch);
  const order = permutation(createRng(seed * 1_000_003 + epoch), rows);
  const offset = (step % stepsPerEpoch) * batchSize;
  return order.slice(offset, offset + batchSize);
}

/** A training step's batch of `rows`: token ids, or the rows of cached pooled features when given. The caller disposes it. */
export function trainingBatch(
  split: TokenizedSplit,
  rows: readonly number[],
  padId: number,
  features?: tf.Tensor2D,
): { batch: StepBatch; dispose(): void } {
  if (features) {
    const batch = {
      features: tf.gather(features, [...rows]),
      labels: tf.tensor1d(
        rows.map((i) => split.labels[i]),
        'int32',
      ),
    };
    return { batch, dispose: () => tf.dispose([batch.features, batch.labels]) };
  }
  const batch = makeBatch(split, rows, padId);
  return { batch, dispose: () => disposeBatch(batch) };
}
