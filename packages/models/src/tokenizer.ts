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

/** One turn of a conversation, as chat templates read it. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant' | (string & {});
  readonly content: string;
}

export interface TextTokenizer {
  readonly padId: number;
  /**
   * Ids of one text, untruncated; special tokens (BOS, [CLS]...) added unless `addSpecialTokens`
   * is false (text a chat template rendered already holds them).
   */
  encodeOne(text: string, options?: { readonly addSpecialTokens?: boolean }): { ids: number[]; typeIds?: number[] };
  readonly defaultMaxLength: number;
  /** Text of ids (decoder models); special tokens left out with `skipSpecialTokens`. */
  decode?(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string;
  /** Ids that end generation: generation_config.json's `eos_token_id` (one or a list), else the tokenizer's eos token. */
  readonly eosIds?: readonly number[];
  /**
   * `tokenizer_config.json`'s `chat_template` rendered (with its special tokens); absent when the
   * model has none. `variables` reach the template as they are (Qwen3's `enable_thinking`).
   */
  applyChatTemplate?(
    messages: readonly ChatMessage[],
    options?: { readonly addGenerationPrompt?: boolean; readonly variables?: Readonly<Record<string, unknown>> },
  ): string;
  /** Largest id it can produce + 1, added tokens included (a model's vocab_size must cover it). */
  readonly vocabularySize?: number;
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
