import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng } from '@deltatune/core';
import { generate, nextToken, type CachingLm } from '@deltatune/models';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { greedyIds, LLM_FIXTURES as FIXTURES, llmReference, maskedMaxDiff } from '../../../test-llm';

const GPT2 = new URL('../../../fixtures/peft-reference/gpt2', import.meta.url).pathname;
const load = (name: string) => loadHuggingFaceFolder(`${FIXTURES}${name}`) as CachingLm;

/**
 * Generation against the PyTorch reference's greedy continuations (full recomputation there), with
 * the key/value cache and without; the cache's logits against a whole-sequence pass; batches of
 * prompts of different lengths (left padding) against each prompt alone.
 */
describe.each(['llama', 'qwen2', 'qwen3'])('%s generation', (name) => {
  it('greedy with and without the KV cache gives the reference continuations id for id', async () => {
    const ref = llmReference(name);
    const model = load(name);
    for (const useCache of [true, false]) {
      const rows = await generate(
        model,
        ref.greedy.map((g) => g.prompt_ids),
        { maxNewTokens: ref.greedy[0].new_ids.length, padId: 0, useCache },
      );
      expect(rows.map((r) => r.newIds)).toEqual(ref.greedy.map((g) => g.new_ids));
      expect(rows.every((r) => r.finish === 'length')).toBe(true);
    }
    model.dispose();
  });

  it('logits from cached one-token steps equal a whole-sequence pass (1e-4), batch left-padded', () => {
    const ref = llmReference(name);
    const model = load(name);
    // Row 1 has 7 real tokens (right-padded in the file); left-pad it instead, as generation does.
    const real = ref.input_ids.map((row, r) => row.filter((_, t) => ref.attention_mask[r][t] === 1));
    const width = Math.max(...real.map((r) => r.length));
    const ids = real.map((r) => [...new Array(width - r.length).fill(0), ...r]);
    const mask = real.map((r) => [...new Array(width - r.length).fill(0), ...r.map(() => 1)]);
    const start = 4;
    const cache = model.createCache(2);
    const pieces: tf.Tensor[] = [];
    const first = model.forward(
      {
        inputIds: tf.tensor2d(
          ids.map((r) => r.slice(0, start)),
          undefined,
          'int32',
        ),
        attentionMask: tf.tensor2d(
          mask.map((r) => r.slice(0, start)),
          undefined,
          'int32',
        ),
      },
      { cache },
    );
    pieces.push(first.logits!);
    for (let t = start; t < width; t++) {
      const out = model.forward(
        {
          inputIds: tf.tensor2d(
            ids.map((r) => [r[t]]),
            undefined,
            'int32',
          ),
          attentionMask: tf.tensor2d(
            mask.map((r) => [r[t]]),
            undefined,
            'int32',
          ),
        },
        { cache },
      );
      pieces.push(out.logits!);
    }
    expect(cache.length).toBe(width);
    const cached = tf.concat(pieces, 1);
    // The reference logits are for right-padded rows: shift row 1's into the left-padded layout.
    const expected = ref.base.logits.map((rows, r) => [
      ...new Array(width - real[r].length).fill(rows[0]),
      ...rows.slice(0, real[r].length),
    ]);
    const diff = maskedMaxDiff(cached, expected, mask);
    console.log(`${name}: cached left-padded logits max diff ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    tf.dispose([cached, ...pieces]);
    cache.dispose();
    model.dispose();
  });

  it('a batch of prompts of different lengths gives what each prompt gives alone', async () => {
    const ref = llmReference(name);
    const model = load(name);
    const prompts = [ref.greedy[0].prompt_ids, ref.greedy[1].prompt_ids.slice(0, 3), [5, 9]];
    const alone = [];
    for (const p of prompts) alone.push((await generate(model, [p], { maxNewTokens: 6, padId: 0 }))[0].newIds);
    const together = await generate(model, prompts, { maxNewTokens: 6, padId: 0 });
    expect(together.map((r) => r.newIds)).toEqual(alone);
    // And alone matches the no-cache greedy loop of the reference procedure.
    expect(alone[2]).toEqual(greedyIds(model, prompts[2], 6));
    model.dispose();
  });
});

describe('generation controls', () => {
  it('stops a row at an eos id (kept in its ids) while the others go on; streams every token in order', async () => {
    const ref = llmReference('llama');
    const model = load('llama');
    const prompts = ref.greedy.map((g) => g.prompt_ids);
    const eos = ref.greedy[0].new_ids[2]; // row 0's third greedy token
    const streamed: Array<[number, number]> = [];
    const rows = await generate(model, prompts, { maxNewTokens: 8, padId: 0, eosIds: [eos], onToken: (r, id) => streamed.push([r, id]) });
    const cut = ref.greedy[0].new_ids.indexOf(eos) + 1;
    expect(rows[0].newIds).toEqual(ref.greedy[0].new_ids.slice(0, cut));
    expect(rows[0].finish).toBe('eos');
    for (const [r, row] of rows.entries()) expect(streamed.filter(([s]) => s === r).map(([, id]) => id)).toEqual(row.newIds);
    model.dispose();
  });

  it('a row that ends early is fed masked padding while the rest go on as they would alone', async () => {
    const ref = llmReference('qwen3');
    const model = load('qwen3');
    const prompts = ref.greedy.map((g) => g.prompt_ids);
    const eos = ref.greedy[0].new_ids[1]; // row 0 ends after two tokens
    const alone = [];
    for (const p of prompts) alone.push((await generate(model, [p], { maxNewTokens: 8, padId: 0, eosIds: [eos] }))[0].newIds);
    const together = await generate(model, prompts, { maxNewTokens: 8, padId: 0, eosIds: [eos] });
    expect(together[0].newIds).toHaveLength(ref.greedy[0].new_ids.indexOf(eos) + 1);
    expect(together.map((r) => r.newIds)).toEqual(alone);
    model.dispose();
  });

  it('stop strings cut the text before them', async () => {
    const ref = llmReference('llama');
    const model = load('llama');
    const decode = (ids: readonly number[]) => ids.map((i) => `<${i}>`).join('');
    const target = `<${ref.greedy[0].new_ids[3]}>`;
    const [row] = await generate(model, [ref.greedy[0].prompt_ids], { maxNewTokens: 8, padId: 0, decode, stopStrings: [target] });
    expect(row.finish).toBe('stop');
    expect(row.newIds).toEqual(ref.greedy[0].new_ids.slice(0, ref.greedy[0].new_ids.indexOf(ref.greedy[0].new_ids[3]) + 1));
    expect(row.text).toBe(decode(row.newIds).slice(0, decode(row.newIds).indexOf(target)));
    model.dispose();
  });

  it('seeded sampling repeats for a seed, differs across seeds; top-k 1 is greedy', async () => {
    const ref = llmReference('qwen2');
    const model = load('qwen2');
    const prompt = [ref.greedy[0].prompt_ids];
    const sample = async (seed: number, extra = {}) =>
      (await generate(model, prompt, { maxNewTokens: 12, padId: 0, doSample: true, temperature: 1.5, seed, ...extra }))[0].newIds;
    expect(await sample(7)).toEqual(await sample(7));
    const seeds = await Promise.all([1, 2, 3, 4].map((s) => sample(s)));
    expect(new Set(seeds.map((s) => s.join(','))).size).toBeGreaterThan(1);
    expect((await sample(3, { topK: 1 })).slice(0, 8)).toEqual(ref.greedy[0].new_ids);
    model.dispose();
  });

  it('ids out of the vocabulary, an empty prompt, or too many new tokens are refused before any work', async () => {
    const model = load('llama');
    await expect(generate(model, [[1, 320]], { maxNewTokens: 2, padId: 0 })).rejects.toThrow(/token 1 is 320, outside .*ids 0\.\.319/);
    await expect(generate(model, [[]], { maxNewTokens: 2, padId: 0 })).rejects.toThrow(/prompt 0 has no tokens/);
    await expect(generate(model, [[1, 2]], { maxNewTokens: 300, padId: 0 })).rejects.toThrow(/exceeds this model's 256 positions/);
    await expect(generate(model, [[1, 2]], { maxNewTokens: 2, padId: 0, doSample: true, topP: 0 })).rejects.toThrow(/top-p is 0/);
    model.dispose();
  });
});

describe('nextToken against hand-computed distributions', () => {
  const draws = (logits: number[], o: Parameters<typeof nextToken>[2], n = 4000) => {
    const rng = createRng(11);
    const counts = new Array(logits.length).fill(0);
    for (let i = 0; i < n; i++) counts[nextToken(Float32Array.from(logits), [], o, rng)]++;
    return counts.map((c) => c / n);
  };
  it('temperature 1 samples softmax(logits); top-p 0.7 keeps the two ids reaching 0.7; top-k 2 keeps two', () => {
    const logits = [Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)];
    const full = draws(logits, { doSample: true });
    [0.5, 0.3, 0.15, 0.05].forEach((p, i) => expect(Math.abs(full[i] - p)).toBeLessThan(0.03));
    const nucleus = draws(logits, { doSample: true, topP: 0.7 });
    expect(nucleus[2] + nucleus[3]).toBe(0);
    expect(Math.abs(nucleus[0] - 0.5 / 0.8)).toBeLessThan(0.03);
    const topK = draws(logits, { doSample: true, topK: 2 });
    expect(topK[2] + topK[3]).toBe(0);
  });
  it('the repetition penalty divides positive logits and multiplies negative ones of seen ids', () => {
    const logits = Float32Array.from([2, 1.9, -1, -1.2]);
    expect(nextToken(Float32Array.from(logits), [], {}, createRng(1))).toBe(0);
    // 2 / 1.5 = 1.33 < 1.9: id 1 wins once id 0 was seen.
    expect(nextToken(Float32Array.from(logits), [0], { repetitionPenalty: 1.5 }, createRng(1))).toBe(1);
    const l = Float32Array.from(logits);
    nextToken(l, [2, 2], { repetitionPenalty: 2 }, createRng(1));
    expect(l[2]).toBe(-2); // once per distinct id
  });
});

describe('GPT-2 generation (no cache: each step reruns the row)', () => {
  it('a left-padded batch gives what each prompt gives alone, and the whole-row greedy loop', async () => {
    const model = loadHuggingFaceFolder(`${GPT2}`);
    const prompts = [
      [3, 17, 42, 8, 19],
      [5, 9],
    ];
    const alone = [];
    for (const p of prompts) alone.push((await generate(model, [p], { maxNewTokens: 5, padId: 0 }))[0].newIds);
    expect((await generate(model, prompts, { maxNewTokens: 5, padId: 0 })).map((r) => r.newIds)).toEqual(alone);
    expect(alone[1]).toEqual(greedyIds(model, prompts[1], 5));
    model.dispose();
  });
});
