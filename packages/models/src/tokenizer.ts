import * as tf from '@tensorflow/tfjs-core';
import type { BackboneInputs } from '@deltatune/core';

/** Token ids and masks for a batch, padded to one length (what a backbone reads). */
export interface EncodedBatch {
  readonly inputIds: number[][];
  readonly attentionMask: number[][];
  readonly tokenTypeIds?: number[][];
}

export interface EncodeOptions {
  /** Longest sequence kept, special tokens included; longer texts are truncated. */
  readonly maxLength?: number;
  /** `longest` pads to the longest row of the batch; `max_length` to `maxLength`. */
  readonly padding?: 'longest' | 'max_length';
}

export interface TextTokenizer {
  readonly padId: number;
  /** Ids of one text, special tokens included, untruncated. */
  encodeOne(text: string): { ids: number[]; typeIds?: number[] };
  readonly defaultMaxLength: number;
}

/** Encodes a batch: truncation to `maxLength`, then padding with the tokenizer's pad id. */
export function encodeBatch(tokenizer: TextTokenizer, texts: readonly string[], options: EncodeOptions = {}): EncodedBatch {
  const maxLength = options.maxLength ?? tokenizer.defaultMaxLength;
  const rows = texts.map((t) => {
    const e = tokenizer.encodeOne(t);
    return { ids: e.ids.slice(0, maxLength), typeIds: e.typeIds?.slice(0, maxLength) };
  });
  const width = options.padding === 'max_length' ? maxLength : Math.max(1, ...rows.map((r) => r.ids.length));
  const pad = (xs: number[], v: number) => [...xs, ...new Array(width - xs.length).fill(v)];
  return {
    inputIds: rows.map((r) => pad(r.ids, tokenizer.padId)),
    attentionMask: rows.map((r) =>
      pad(
        r.ids.map(() => 1),
        0,
      ),
    ),
    tokenTypeIds: rows.every((r) => r.typeIds) ? rows.map((r) => pad(r.typeIds!, 0)) : undefined,
  };
}

/** Batch arrays as int32 tensors; the caller disposes them. */
export function batchToTensors(batch: EncodedBatch): BackboneInputs {
  return {
    inputIds: tf.tensor2d(batch.inputIds, undefined, 'int32'),
    attentionMask: tf.tensor2d(batch.attentionMask, undefined, 'int32'),
    tokenTypeIds: batch.tokenTypeIds ? tf.tensor2d(batch.tokenTypeIds, undefined, 'int32') : undefined,
  };
}

export function disposeInputs(inputs: BackboneInputs): void {
  inputs.inputIds.dispose();
  inputs.attentionMask.dispose();
  inputs.tokenTypeIds?.dispose();
}
