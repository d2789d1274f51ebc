import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { greedyIds, LLM_FIXTURES as FIXTURES, llmReference, maskedMaxDiff } from '../../../test-llm';

/**
 * Llama, Qwen2 and Qwen3 against the plain-PyTorch reference of fixtures/llm-reference (written from
 * transformers' modeling code): logits where the mask is 1 within 1e-4, and greedy continuations
 * (full recomputation per token) id for id. The fixtures exercise Llama 3 RoPE scaling with grouped-
 * query attention and a separate head (llama), q/k/v biases, one key-value head, bfloat16 weights and
 * tied embeddings (qwen2), and per-head q/k RMSNorm with an explicit head_dim (qwen3).
 */
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
