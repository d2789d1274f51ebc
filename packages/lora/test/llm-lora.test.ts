import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { loadDelta } from '@deltatune/node';
import { loraMethod } from '@deltatune/lora';
import { greedyIds, LLM_FIXTURES as FIXTURES, llmReference, maskedMaxDiff } from '../../../test-llm';

/** PEFT LoRA folders on Llama, Qwen2 and Qwen3 against the PyTorch reference: unmerged and merged. */

beforeAll(() => registerMethod(loraMethod));

describe.each(['llama', 'qwen2', 'qwen3'])('a PEFT LoRA on %s', (name) => {
  it('matches the reference logits (1e-4) and greedy ids, unmerged and merged; detach gives the base logits back', () => {
    const ref = llmReference(name);
    const model = loadHuggingFaceFolder(`${FIXTURES}${name}`);
    const inputs = () => ({
      inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
    });
    const logits = () => tf.tidy(() => model.forward(inputs()).logits!);
    const { delta } = loadDelta(model, `${FIXTURES}${name}-lora`);
    expect(delta.sites).toContain('model.layers.0.self_attn.q_proj');
    for (const merged of [false, true]) {
      if (merged) delta.merge!();
      const out = logits();
      expect(maskedMaxDiff(out, ref.lora.logits, ref.attention_mask), `merged=${merged}`).toBeLessThan(1e-4);
      out.dispose();
      for (const g of ref.greedy_lora) expect(greedyIds(model, g.prompt_ids, g.new_ids.length), `merged=${merged}`).toEqual(g.new_ids);
    }
    delta.unmerge!();
    delta.detach();
    const base = logits();
    expect(maskedMaxDiff(base, ref.base.logits, ref.attention_mask)).toBeLessThan(1e-4);
    base.dispose();
    model.dispose();
  });
});
