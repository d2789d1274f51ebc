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
