// Helpers for the Llama-family tests against fixtures/llm-reference (models' and LoRA's).
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '@deltatune/core';

export const LLM_FIXTURES = new URL('./fixtures/llm-reference/', import.meta.url).pathname;

export interface LlmReference {
  input_ids: number[][];
  attention_mask: number[][];
  base: { logits: number[][][] };
  lora: { logits: number[][][] };
  greedy: Array<{ prompt_ids: number[]; new_ids: number[] }>;
  greedy_lora: Array<{ prompt_ids: number[]; new_ids: number[] }>;
  smallest_top2_margin: number;
}

export const llmReference = (name: string): LlmReference => JSON.parse(readFileSync(`${LLM_FIXTURES}${name}-reference.json`, 'utf8'));

/** Largest |difference| over the positions whose mask is 1. */
export function maskedMaxDiff(logits: tf.Tensor, expected: number[][][], mask: number[][]): number {
  const got = logits.arraySync() as number[][][];
  let worst = 0;
  mask.forEach((row, b) =>
    row.forEach((m, t) => m && got[b][t].forEach((v, j) => (worst = Math.max(worst, Math.abs(v - expected[b][t][j]))))),
  );
  return worst;
}

/** Greedy decoding by recomputing the whole sequence per token (no KV cache): the reference's own procedure. */
export function greedyIds(model: Backbone, prompt: number[], count: number): number[] {
  const ids = [...prompt];
  for (let n = 0; n < count; n++) {
    const next = tf.tidy(() => {
      const x = tf.tensor2d([ids], undefined, 'int32');
      const logits = model.forward({ inputIds: x, attentionMask: tf.onesLike(x) }).logits!;
      // The last position: a prompt-tuning prompt puts its virtual tokens in front.
      return tf.argMax(tf.squeeze(tf.slice(logits, [0, (logits.shape[1] as number) - 1, 0], [1, 1, -1])), -1).dataSync()[0];
    });
    ids.push(next);
  }
  return ids.slice(prompt.length);
}
