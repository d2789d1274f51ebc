import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, DeltaTuneError, type Backbone } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { lora } from '@deltatune/lora';
import { limitDataset, type Dataset, type TrainEvent } from '@deltatune/train';
import { loadSpam, train } from '@deltatune/train/node';

/** What `train()` refuses before computing anything, and how it reports an exploding loss. */
describe('train() options', () => {
  let backbone: Backbone;
  let tokenizer: TextTokenizer;
  let data: Dataset;
  beforeAll(() => {
    backbone = loadUseLite();
    tokenizer = loadTokenizer('use-lite');
    data = limitDataset(loadSpam(), { train: 48, validation: 8, test: 8 });
  });
  afterAll(() => backbone.dispose());
  const ok = { learningRate: 1e-3, batchSize: 8, steps: 2, maxLength: 16, seed: 0 };

  it.each([
    ['batchSize', 0, /batchSize must be a whole number >= 1, got 0/],
    ['batchSize', 2.5, /batchSize must be a whole number >= 1/],
    ['steps', -1, /steps must be a whole number >= 1, got -1/],
    ['learningRate', -1, /learningRate must be a positive number/],
    ['learningRate', Number.NaN, /learningRate must be a positive number/],
    ['maxLength', 0, /maxLength must be a whole number >= 1/],
    ['warmupSteps', -3, /warmupSteps must be a whole number >= 0/],
    ['clipNorm', -1, /clipNorm must be a number >= 0/],
  ])('%s = %s is refused before any work', async (key, value, message) => {
    const before = tf.memory().numTensors;
    const run = train({ backbone, tokenizer, dataset: data, ...ok, [key]: value });
    await expect(run).rejects.toThrow(DeltaTuneError);
    await expect(train({ backbone, tokenizer, dataset: data, ...ok, [key]: value })).rejects.toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an empty split or a single label is refused, naming the split sizes', async () => {
    await expect(train({ backbone, tokenizer, dataset: { ...data, test: [] }, ...ok })).rejects.toThrow(
      /has no test examples \(train 48, validation 8, test 0\)/,
    );
    await expect(train({ backbone, tokenizer, dataset: { ...data, labels: ['ham'] }, ...ok })).rejects.toThrow(
      /has 1 label \("ham"\): a classifier needs at least 2/,
    );
  });

  it('a loss that explodes without turning NaN is divergence, reported with the last good checkpoint', async () => {
    const delta = attach(backbone, lora({ r: 2, seed: 1 }), 'explode');
    const runDir = mkdtempSync(join(tmpdir(), 'explode-'));
    const losses: number[] = [];
    const onEvent = (e: TrainEvent) => e.type === 'step' && losses.push(e.loss);
    await expect(
      train({ backbone, tokenizer, dataset: data, deltas: [delta], ...ok, learningRate: 1e6, steps: 12, evalEvery: 2, runDir, onEvent }),
    ).rejects.toThrow(
      /training diverged: the loss is [\d.e+]+ at step \d+, over 100x the first step's [\s\S]*fix: start afresh with a lower --lr/,
    );
    // Every loss it let through was within the limit: no step past 100x the first was reported as training.
    for (const l of losses) expect(l).toBeLessThanOrEqual(100 * Math.max(losses[0], 1));
    delta.detach();
  });

  it('resume without a checkpoint says it starts fresh', async () => {
    const events: TrainEvent[] = [];
    const runDir = mkdtempSync(join(tmpdir(), 'fresh-'));
    const result = await train({ backbone, tokenizer, dataset: data, ...ok, runDir, resume: true, onEvent: (e) => events.push(e) });
    result.head?.dispose();
    expect(events.find((e) => e.type === 'fresh')).toEqual({ type: 'fresh', dir: join(runDir, 'checkpoint') });
  });
});
