import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { registerMethod } from '@deltatune/core';
import { generate } from '@deltatune/models';
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

describe.each(['llama', 'qwen2', 'qwen3'])('generation with a PEFT LoRA on %s', (name) => {
  it('cached generation gives the reference LoRA continuations, the LoRA merged and unmerged', async () => {
    const ref = llmReference(name);
    const model = loadHuggingFaceFolder(`${FIXTURES}${name}`);
    const { delta } = loadDelta(model, `${FIXTURES}${name}-lora`);
    const prompts = ref.greedy_lora.map((g) => g.prompt_ids);
    const run = async () =>
      (await generate(model, prompts, { maxNewTokens: ref.greedy_lora[0].new_ids.length, padId: 0 })).map((r) => r.newIds);
    const unmerged = await run();
    delta.merge!();
    const merged = await run();
    expect(unmerged).toEqual(ref.greedy_lora.map((g) => g.new_ids));
    expect(merged).toEqual(unmerged);
    delta.detach();
    model.dispose();
  });
});

describe('training a LoRA through grouped-query attention (llama: 4 query heads read 2 key-value heads)', () => {
  it('the causal-LM loss on one batch falls step by step (the repeated heads have a gradient)', async () => {
    const { createTrainStep } = await import('@deltatune/train');
    const { lora } = await import('@deltatune/lora');
    const ref = llmReference('llama');
    const model = loadHuggingFaceFolder(`${FIXTURES}llama`);
    const delta = lora({ r: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj'] }).attach(model);
    const inputs = {
      inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
    };
    const step = createTrainStep({
      backbone: model,
      task: 'lm',
      deltas: [delta],
      learningRate: 1e-2,
      schedule: 'constant',
      totalSteps: 10,
    });
    const losses: number[] = [];
    for (let i = 0; i < 6; i++) losses.push(await step.queue({ inputs }).loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[5]).toBeLessThan(losses[0] * 0.9);
    step.dispose();
    tf.dispose([inputs.inputIds, inputs.attentionMask]);
    delta.detach();
    model.dispose();
  });
});

describe('the LM head of a frozen model: a cached transposed copy and a custom gradient', () => {
  it.each(['llama', 'qwen2'])('%s: LoRA gradients equal those of the plain product (trainable head), 1e-5', async (name) => {
    const { causalLmLoss } = await import('@deltatune/train');
    const { lora } = await import('@deltatune/lora');
    const ref = llmReference(name);
    const model = loadHuggingFaceFolder(`${FIXTURES}${name}`);
    const delta = lora({ r: 4, alpha: 8, targets: ['q_proj', 'v_proj'], init: 'random' }).attach(model);
    const variables = [...delta.variables.values()].filter((v) => v.trainable);
    const inputIds = tf.tensor2d(ref.input_ids, undefined, 'int32');
    const attentionMask = tf.tensor2d(ref.attention_mask, undefined, 'int32');
    const grads = () =>
      tf.variableGrads(
        () => causalLmLoss(model.forward({ inputIds, attentionMask }, { training: true }).logits!, inputIds, attentionMask) as tf.Scalar,
        variables,
      );
    const head = model.parameters.get(name === 'llama' ? 'lm_head.weight' : 'model.embed_tokens.weight')!;
    const frozen = grads();
    head.trainable = true;
    const plain = grads();
    head.trainable = false;
    expect(Math.abs((await frozen.value.data())[0] - (await plain.value.data())[0])).toBeLessThan(1e-5);
    for (const v of variables) {
      const diff = tf.max(tf.abs(tf.sub(frozen.grads[v.name], plain.grads[v.name]))).dataSync()[0];
      const scale = tf.max(tf.abs(plain.grads[v.name])).dataSync()[0];
      expect(scale).toBeGreaterThan(0);
      expect(diff / scale, v.name).toBeLessThan(1e-5);
    }
    tf.dispose([inputIds, attentionMask, frozen.value, plain.value, ...Object.values(frozen.grads), ...Object.values(plain.grads)]);
    delta.detach();
    model.dispose();
  });
});
