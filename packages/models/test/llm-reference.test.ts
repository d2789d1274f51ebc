import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';

/**
 * Llama, Qwen2 and Qwen3 against the plain-PyTorch reference of fixtures/llm-reference (written from
 * transformers' modeling code): logits where the mask is 1 within 1e-4, and greedy continuations
 * (full recomputation per token) id for id. The fixtures exercise Llama 3 RoPE scaling with grouped-
 * query attention and a separate head (llama), q/k/v biases, one key-value head, bfloat16 weights and
 * tied embeddings (qwen2), and per-head q/k RMSNorm with an explicit head_dim (qwen3).
 */
const FIXTURES = new URL('../../../fixtures/llm-reference/', import.meta.url).pathname;

interface LlmReference {
  input_ids: number[][];
  attention_mask: number[][];
  base: { logits: number[][][] };
  greedy: Array<{ prompt_ids: number[]; new_ids: number[] }>;
  smallest_top2_margin: number;
}

export const llmReference = (name: string): LlmReference => JSON.parse(readFileSync(`${FIXTURES}${name}-reference.json`, 'utf8'));

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
      return tf.argMax(tf.squeeze(tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1])), -1).dataSync()[0];
    });
    ids.push(next);
  }
  return ids.slice(prompt.length);
}

describe.each(['llama', 'qwen2', 'qwen3'])('%s from a Hugging Face folder against the PyTorch reference', (name) => {
  it('logits within 1e-4 on two right-padded rows; greedy continuations id for id', () => {
    const ref = llmReference(name);
    const model = loadHuggingFaceFolder(`${FIXTURES}${name}`);
    expect(model.architecture).toBe(name);
    const logits = tf.tidy(
      () =>
        model.forward({
          inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
          attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
        }).logits!,
    );
    const diff = maskedMaxDiff(logits, ref.base.logits, ref.attention_mask);
    console.log(`${name}: max |logit diff| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    logits.dispose();
    for (const g of ref.greedy) expect(greedyIds(model, g.prompt_ids, g.new_ids.length)).toEqual(g.new_ids);
    // Hook sites carry Hugging Face names, so PEFT's target_modules match unchanged.
    const names = model.sites.map((s) => s.name);
    expect(names).toContain('model.layers.0.self_attn.q_proj');
    expect(names).toContain('model.layers.1.mlp.down_proj');
    model.dispose();
  });
});

describe('Llama-family config checks', () => {
  it('an unsupported rope_scaling type is refused, naming it', async () => {
    const { llamaConfig } = await import('@deltatune/models');
    const config = JSON.parse(readFileSync(`${FIXTURES}llama/config.json`, 'utf8'));
    expect(() => llamaConfig({ ...config, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(
      /rope_scaling type "yarn" is not supported/,
    );
    expect(() => llamaConfig({ ...config, num_key_value_heads: 3 })).toThrow(/not a multiple of num_key_value_heads 3/);
  });
});
