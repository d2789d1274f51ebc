import { describe, expect, it } from 'vitest';
import { attach } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { lora } from '@deltatune/lora';
import { evaluateLm, limitDataset, tokenizeSplit, train, type LmMetrics } from '@deltatune/train';
import { loadSotuParty } from '@deltatune/train/node';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;

/** The tiny GPT-2 fixture has 100 ids and no tokenizer: bytes modulo 100 stand in for one. */
const bytes: TextTokenizer = {
  padId: 0,
  defaultMaxLength: 32,
  encodeOne: (t) => ({ ids: Array.from(Buffer.from(t)).map((b) => b % 100) }),
};

describe('causal language modelling', () => {
  it('LoRA on GPT-2 lowers held-out perplexity on State of the Union text', async () => {
    const model = loadHuggingFaceFolder(`${FIXTURES}gpt2`);
    const data = limitDataset(loadSotuParty(), { train: 256, validation: 32, test: 64 });
    const before = await evaluateLm(model, tokenizeSplit(bytes, data.test, 32), 16, 0);
    const delta = attach(model, lora({ r: 4, alpha: 8, targets: ['c_attn', 'c_fc'] }));
    const result = await train({
      backbone: model,
      tokenizer: bytes,
      dataset: data,
      task: 'lm',
      deltas: [delta],
      learningRate: 1e-2,
      batchSize: 16,
      steps: 40,
      maxLength: 32,
      seed: 1,
      evalEvery: 20,
    });
    const after = result.test as LmMetrics;
    console.log(`perplexity ${before.perplexity.toFixed(2)} -> ${after.perplexity.toFixed(2)}`);
    expect(after.perplexity).toBeLessThan(before.perplexity * 0.9);
    expect(Math.exp(after.loss)).toBeCloseTo(after.perplexity, 5);
    delta.detach();
    model.dispose();
  });
});
