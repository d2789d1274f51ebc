import { describe, expect, it } from 'vitest';
import { generate } from '@deltatune/models';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { prefixTuning, promptTuning } from '@deltatune/prefix';
import { greedyIds, LLM_FIXTURES as FIXTURES, llmReference } from '../../../test-llm';

/**
 * Prefix keys enter the key/value cache once, on the prompt's pass, and a prompt-tuning prompt is
 * placed once: cached generation must then equal recomputing the whole row each step (which runs
 * the hooks every time), and differ from the base model's continuation.
 */
describe.each([
  ['prefix tuning', 'llama', () => prefixTuning({ virtualTokens: 3, initStd: 1 })],
  ['prompt tuning', 'qwen3', () => promptTuning({ virtualTokens: 2, init: 'random' })],
] as const)('%s on %s: cached generation', (_label, name, method) => {
  it('equals full recomputation per token, and the delta changes the continuation', async () => {
    const ref = llmReference(name);
    const model = loadHuggingFaceFolder(`${FIXTURES}${name}`);
    const delta = method().attach(model);
    const prompts = ref.greedy.map((g) => g.prompt_ids);
    const cached = (await generate(model, prompts, { maxNewTokens: 8, padId: 0 })).map((r) => r.newIds);
    const recomputed = (await generate(model, prompts, { maxNewTokens: 8, padId: 0, useCache: false })).map((r) => r.newIds);
    expect(cached).toEqual(recomputed);
    expect(cached[0]).toEqual(greedyIds(model, prompts[0], 8));
    expect(cached).not.toEqual(ref.greedy.map((g) => g.new_ids));
    delta.detach();
    model.dispose();
  });
});

describe('prompt tuning on decoders: positions and the causal-LM loss', () => {
  it('GPT-2 with a prompt: a left-padded batch gives what each prompt gives alone', async () => {
    const model = loadHuggingFaceFolder(new URL('../../../fixtures/peft-reference/gpt2', import.meta.url).pathname);
    const delta = promptTuning({ virtualTokens: 2, init: 'random' }).attach(model);
    const prompts = [
      [3, 17, 42, 8, 19],
      [5, 9],
    ];
    const alone = [];
    for (const p of prompts) alone.push((await generate(model, [p], { maxNewTokens: 4, padId: 0 }))[0].newIds);
    expect((await generate(model, prompts, { maxNewTokens: 4, padId: 0 })).map((r) => r.newIds)).toEqual(alone);
    delta.detach();
    model.dispose();
  });

  it.each(['llama', 'qwen3'])('%s: a prompt trains with --task lm (the loss reads the tokens, not the virtual positions)', async (name) => {
    const tf = await import('@tensorflow/tfjs-core');
    const { createTrainStep } = await import('@deltatune/train');
    const ref = llmReference(name);
    const model = loadHuggingFaceFolder(`${FIXTURES}${name}`);
    const delta = promptTuning({ virtualTokens: 3, init: 'random' }).attach(model);
    const inputs = {
      inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
    };
    const step = createTrainStep({
      backbone: model,
      task: 'lm',
      deltas: [delta],
      learningRate: 0.05,
      schedule: 'constant',
      totalSteps: 10,
    });
    const losses: number[] = [];
    for (let i = 0; i < 6; i++) losses.push(await step.queue({ inputs }).loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[5]).toBeLessThan(losses[0]);
    step.dispose();
    tf.dispose([inputs.inputIds, inputs.attentionMask]);
    delta.detach();
    model.dispose();
  });
});
