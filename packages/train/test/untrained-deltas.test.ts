import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, type Backbone, type Delta } from '@deltatune/core';
import { lora } from '@deltatune/lora';
import { createTrainStep, ClassificationHead, train } from '@deltatune/train';
import { charTokenizer, letterDataset, tinyBert } from './fixtures/tiny-run';

const data = letterDataset();
// A strong weight decay: a delta given only zero gradients would shrink by lr * wd = 2% a step.
const run = {
  tokenizer: charTokenizer,
  dataset: data,
  learningRate: 0.1,
  weightDecay: 0.2,
  batchSize: 8,
  steps: 4,
  maxLength: 12,
  seed: 1,
};

const values = (d: Delta) => [...d.variables.values()].map((v) => Array.from(v.dataSync()));

describe('deltas that are switched off or merged are not trained', () => {
  const backbone: Backbone = tinyBert(2);
  afterAll(() => backbone.dispose());

  it('a switched-off and a merged delta keep their values bit for bit under weight decay; the active one trains', async () => {
    const active = attach(backbone, lora({ r: 2, seed: 1, targets: ['query'] }), 'active');
    const off = attach(backbone, lora({ r: 2, seed: 2, targets: ['value'] }), 'off');
    const merged = attach(backbone, lora({ r: 2, seed: 3, targets: ['key'] }), 'merged');
    // LoRA starts with B = 0: give B values, so that merging changes the base and decay would show in both factors.
    for (const d of [off, merged]) for (const v of d.variables.values()) v.assign(tf.fill(v.shape, 0.05));
    off.active = false;
    merged.merge!();
    const [activeBefore, offBefore, mergedBefore] = [active, off, merged].map(values);
    expect([active, off, merged].every((d) => d.trainable)).toBe(true);

    const result = await train({ backbone, ...run, deltas: [active, off, merged] });
    result.head?.dispose();

    expect(values(off)).toEqual(offBefore);
    expect(values(merged)).toEqual(mergedBefore);
    expect(values(active)).not.toEqual(activeBefore);
    // Only the active delta and the head count as trained.
    expect(result.trainedParameters).toBe(active.parameterCount() + backbone.hiddenSize * 2 + 2);
    merged.unmerge!();
    for (const d of [active, off, merged]) d.detach();
  });

  it('a delta learning rate for a switched-off delta is refused, saying why', async () => {
    const off = attach(backbone, lora({ r: 2, seed: 2 }), 'off');
    off.active = false;
    const head = new ClassificationHead(backbone.hiddenSize, data.labels, 0);
    expect(() =>
      createTrainStep({ backbone, head, deltas: [off], learningRate: 1e-3, deltaLearningRates: { off: 1e-2 }, totalSteps: 1 }),
    ).toThrow(/learning rate was given for delta "off", which is not a trained delta here \(it is switched off\)/);
    head.dispose();
    off.detach();
  });
});
