import * as tf from '@tensorflow/tfjs-core';
import type { BackboneInputs } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import type { Example } from './datasets/types';

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
export function makeBatch(split: TokenizedSplit, indices: readonly number[], padId: number): { inputs: BackboneInputs; labels: tf.Tensor1D } {
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
    labels: tf.tensor1d(indices.map((i) => split.labels[i]), 'int32'),
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
