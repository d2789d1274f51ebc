import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, type Backbone } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { lora } from '@deltatune/lora';
import { limitDataset, loadSpam, train, type ClassificationMetrics, type Dataset } from '@deltatune/train';

/**
 * Issue acceptance at CI scale: LoRA + head against the frozen backbone + the same head, same
 * data, split, seed, steps and learning rate. Real weights (USE-lite), real data (SpamAssassin).
 */
describe('training on spam with USE-lite', () => {
  let backbone: Backbone;
  let tokenizer: TextTokenizer;
  let data: Dataset;
  beforeAll(() => {
    backbone = loadUseLite();
    tokenizer = loadTokenizer('use-lite');
    data = limitDataset(loadSpam(), { train: 960, validation: 128, test: 400 });
  });
  afterAll(() => backbone.dispose());

  const common = { learningRate: 3e-3, batchSize: 16, steps: 60, maxLength: 32, seed: 3, warmupSteps: 5, evalEvery: 0 } as const;

  it('LoRA beats the frozen-backbone baseline on the held-out split, with a flat tensor count', async () => {
    const baseline = await train({ backbone, tokenizer, dataset: data, ...common });
    baseline.head!.dispose();
    const delta = attach(backbone, lora({ r: 8, alpha: 16, seed: 3 }));
    const counts: number[] = [];
    const before = tf.memory().numTensors;
    const tuned = await train({ backbone, tokenizer, dataset: data, deltas: [delta], ...common, onEvent: (e) => e.type === 'step' && counts.push(tf.memory().numTensors) });
    tuned.head!.dispose();
    const b = baseline.test as ClassificationMetrics;
    const t = tuned.test as ClassificationMetrics;
    console.log(`baseline test accuracy ${b.accuracy.toFixed(4)} loss ${b.loss.toFixed(4)}; LoRA ${t.accuracy.toFixed(4)} loss ${t.loss.toFixed(4)}`);
    expect(t.accuracy).toBeGreaterThan(b.accuracy);
    expect(t.loss).toBeLessThan(b.loss);
    // Live tensors do not grow from step to step.
    expect(new Set(counts.slice(1)).size).toBe(1);
    delta.detach();
    expect(tf.memory().numTensors).toBe(before - delta.variables.size);
  });

  it('stops on a NaN/Inf loss with a clear error, keeping the last good checkpoint', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'nan-'));
    const delta = attach(backbone, lora({ r: 2, seed: 1 }));
    const small = limitDataset(data, { train: 64, validation: 16, test: 16 });
    await expect(
      train({ backbone, tokenizer, dataset: small, deltas: [delta], learningRate: 1e38, clipNorm: 0, batchSize: 8, steps: 12, maxLength: 16, seed: 1, evalEvery: 2, runDir }),
    ).rejects.toThrow(/training diverged: the loss is (NaN|Infinity|-Infinity) at step \d+[\s\S]*last good checkpoint/);
    expect(existsSync(join(runDir, 'checkpoint', 'state.json'))).toBe(true);
    delta.detach();
  });
});
