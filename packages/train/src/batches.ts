import * as tf from '@tensorflow/tfjs-core';
import { createRng, permutation, type BackboneInputs } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import type { Example } from './datasets/types';
import type { StepBatch } from './train-step';

/** A split tokenized once: ids truncated to `maxLength`, with labels. */
export interface TokenizedSplit {
  readonly ids: readonly number[][];
  readonly labels: Int32Array;
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
): { inputs: BackboneInputs; labels: tf.Tensor1D } {
  const width = Math.max(...indices.map((i) => split.ids[i].length));
  const ids = new Int32Array(indices.length * width).fill(padId);
  const mask = new Int32Array(indices.length * width);
  indices.forEach((row, r) => {
    const seq = split.ids[row];
    ids.set(seq, r * width);
    mask.fill(1, r * width, r * width + seq.length);
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
  };
}

export function disposeBatch(b: { inputs: BackboneInputs; labels: tf.Tensor }): void {
  tf.dispose([b.inputs.inputIds, b.inputs.attentionMask, b.labels]);
  b.inputs.tokenTypeIds?.dispose();
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
