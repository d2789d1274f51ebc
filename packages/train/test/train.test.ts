import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, defineDelta, ownedVariable, readSafetensors, type Backbone, type DeltaSpec } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { lora } from '@deltatune/lora';
import { limitDataset, type ClassificationMetrics, type Dataset } from '@deltatune/train';
import { loadSpam, train } from '@deltatune/train/node';

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
    const tuned = await train({
      backbone,
      tokenizer,
      dataset: data,
      deltas: [delta],
      ...common,
      onEvent: (e) => e.type === 'step' && counts.push(tf.memory().numTensors),
    });
    tuned.head!.dispose();
    const b = baseline.test as ClassificationMetrics;
    const t = tuned.test as ClassificationMetrics;
    console.log(
      `baseline test accuracy ${b.accuracy.toFixed(4)} loss ${b.loss.toFixed(4)}; LoRA ${t.accuracy.toFixed(4)} loss ${t.loss.toFixed(4)}`,
    );
    expect(t.accuracy).toBeGreaterThan(b.accuracy);
    expect(t.loss).toBeLessThan(b.loss);
    // Live tensors do not grow from step to step. Each step is reported while the next one is
    // queued (its loss tensor alive), except the last: compare the steady state.
    expect(counts).toHaveLength(common.steps);
    expect(new Set(counts.slice(1, -1)).size).toBe(1);
    delta.detach();
    expect(tf.memory().numTensors).toBe(before - delta.variables.size);
  });

  it('an aborted signal stops after the step in flight, then scores the test split (a stop button)', async () => {
    const controller = new AbortController();
    const steps: number[] = [];
    const delta = attach(backbone, lora({ r: 4, alpha: 8, seed: 3 }));
    const small = limitDataset(data, { train: 64, validation: 16, test: 32 });
    const result = await train({
      backbone,
      tokenizer,
      dataset: small,
      deltas: [delta],
      ...common,
      steps: 40,
      onEvent: (e) => {
        if (e.type !== 'step') return;
        steps.push(e.step);
        // From a later task, as a worker's stop message arrives: only a loop that yields sees it.
        if (e.step === 3) setTimeout(() => controller.abort(), 0);
      },
      signal: controller.signal,
    });
    result.head!.dispose();
    delta.detach();
    // The loop reads losses one step behind, so at most one more step is already queued.
    expect(result.steps).toBeGreaterThanOrEqual(3);
    expect(result.steps).toBeLessThanOrEqual(5);
    expect(result.stopped).toBe(true);
    expect(steps.at(-1)).toBe(result.steps);
    expect((result.test as ClassificationMetrics).examples).toBe(32);
    // Not aborted: no flag.
    const full = await train({ backbone, tokenizer, dataset: small, ...common, steps: 2, signal: new AbortController().signal });
    full.head!.dispose();
    expect(full.steps).toBe(2);
    expect(full.stopped).toBeUndefined();
  });

  it('stops on a NaN/Inf loss with a clear error, keeping the last good checkpoint', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'nan-'));
    // A delta that scales the pooler's output by a trained `scale`, and from its 5th training pass
    // adds NaN after the product: divergence on cue, with d loss / d scale finite before and NaN
    // after, so an update that is not skipped would show in `scale`.
    let trainingPasses = 0;
    const poisoned: DeltaSpec = {
      method: 'poisoned',
      version: '0.0.0',
      coreRange: '^0.1.0',
      options: {},
      attach: (bb, name) => {
        const scale = ownedVariable(tf.ones([1]));
        return defineDelta({
          name,
          method: 'poisoned',
          version: '0.0.0',
          backbone: bb,
          variables: new Map([['scale', scale]]),
          sites: ['pooler.dense'],
          register: () => [
            bb.hooks.add(
              'linear',
              'pooler.dense',
              {
                output: (_x, y, _s, ctx) => {
                  if (ctx.training) trainingPasses++;
                  const scaled = tf.mul(y, scale);
                  return trainingPasses >= 5 && ctx.training ? tf.add(scaled, NaN) : scaled;
                },
              },
              { owner: name },
            ),
          ],
          config: () => ({}),
        });
      },
    };
    const before = tf.memory().numTensors;
    const delta = attach(backbone, poisoned);
    const small = limitDataset(data, { train: 64, validation: 16, test: 16 });
    await expect(
      train({
        backbone,
        tokenizer,
        dataset: small,
        deltas: [delta],
        learningRate: 1e-3,
        batchSize: 8,
        steps: 12,
        maxLength: 16,
        seed: 1,
        evalEvery: 2,
        runDir,
      }),
    ).rejects.toThrow(/training diverged: the loss is NaN at step 5[\s\S]*the last good checkpoint \(step 4\) is in/);
    expect(JSON.parse(readFileSync(join(runDir, 'checkpoint', 'state.json'), 'utf8')).step).toBe(4);
    // The checkpoint saves the trained variables in order, the delta's first: t.00000 is `scale`.
    const saved = readSafetensors(readFileSync(join(runDir, 'checkpoint', 'trained.safetensors'))).tensors.get('t.00000')!;
    expect(saved.shape).toEqual([1]);
    const atStep4 = saved.data[0];
    // The good steps trained it (its gradient was finite then)...
    expect(Number.isFinite(atStep4)).toBe(true);
    expect(atStep4).not.toBe(1);
    // ...and the diverged steps (5, and 6, which the trainer had already queued when it read step
    // 5's loss) were skipped on the device: `scale` is exactly what step 4 left.
    expect((await delta.variables.get('scale')!.data())[0]).toBe(atStep4);
    delta.detach();
    // The failed run freed its optimizer state, snapshots and head.
    expect(tf.memory().numTensors).toBe(before);
  });
});
