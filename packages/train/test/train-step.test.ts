import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, defineDelta, ownedVariable, type Backbone, type DeltaSpec } from '@deltatune/core';
import { lora } from '@deltatune/lora';
import {
  ClassificationHead,
  createTrainStep,
  disposeBatch,
  makeBatch,
  stepRows,
  tokenizeSplit,
  train,
  type TrainStepOptions,
} from '@deltatune/train';
import { charTokenizer, letterDataset, tinyBert } from './fixtures/tiny-run';

const data = letterDataset();
const settings = {
  learningRate: 1e-2,
  warmupSteps: 2,
  weightDecay: 0.01,
  schedule: 'linear',
  batchSize: 8,
  maxLength: 12,
  seed: 7,
  // 8 steps over 24 rows: a new epoch (a new batch order) every 3 steps.
  steps: 8,
} as const;

/** Mean cross-entropy of `logits` rows against `labels`, in plain JS. */
function crossEntropyByHand(logits: Float32Array, labels: readonly number[], classes: number): number {
  let sum = 0;
  labels.forEach((y, r) => {
    const row = Array.from(logits.subarray(r * classes, (r + 1) * classes));
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((s, z) => s + Math.exp(z - max), 0)) + max;
    sum += logSum - row[y];
  });
  return sum / labels.length;
}

describe('one training step for the trainer and bench', () => {
  const backbone: Backbone = tinyBert(3);
  afterAll(() => backbone.dispose());

  it('the trainer and createTrainStep driven as bench drives it give the same losses, step for step, and the same weights', async () => {
    // The trainer.
    const deltaA = attach(backbone, lora({ r: 2, alpha: 4, seed: 5 }), 'lora');
    const headA = new ClassificationHead(backbone.hiddenSize, data.labels, 11);
    const result = await train({
      backbone,
      tokenizer: charTokenizer,
      dataset: data,
      deltas: [deltaA],
      head: headA,
      ...settings,
      evalEvery: 0,
    });
    const trainerLosses = result.history.map((h) => h.loss);
    const trainerWeights = [...deltaA.variables.values(), ...headA.variables].map((v) => Array.from(v.dataSync()));
    deltaA.detach();
    headA.dispose();

    // The exported step, as `deltatune bench` runs it: each step queued before the previous one's loss is awaited.
    const before = tf.memory().numTensors;
    const delta = attach(backbone, lora({ r: 2, alpha: 4, seed: 5 }), 'lora');
    const head = new ClassificationHead(backbone.hiddenSize, data.labels, 11);
    const options: TrainStepOptions = { backbone, deltas: [delta], head, ...settings, totalSteps: settings.steps };
    const step = createTrainStep(options);
    const split = tokenizeSplit(charTokenizer, data.train, settings.maxLength);
    const losses: number[] = [];
    let firstLossByHand = NaN;
    let previous: Promise<number> | undefined;
    for (let s = 0; s < settings.steps; s++) {
      const rows = stepRows(settings.seed, s, split.ids.length, settings.batchSize);
      const batch = makeBatch(split, rows, charTokenizer.padId);
      if (s === 0) {
        // Independent of the step: the loss of the untrained model on this batch, computed in JS.
        const logits = tf.tidy(() => head.logits(backbone.forward(batch.inputs).pooled));
        firstLossByHand = crossEntropyByHand(logits.dataSync() as Float32Array, Array.from(batch.labels.dataSync()), 2);
        logits.dispose();
      }
      const queued = step.queue({ inputs: batch.inputs, labels: batch.labels });
      disposeBatch(batch);
      expect(queued.step).toBe(s + 1);
      if (previous) losses.push(await previous);
      previous = queued.loss;
    }
    losses.push(await previous!);
    const stepWeights = [...delta.variables.values(), ...head.variables].map((v) => Array.from(v.dataSync()));
    step.dispose();
    delta.detach();
    head.dispose();

    expect(trainerLosses).toHaveLength(settings.steps);
    expect(losses).toEqual(trainerLosses);
    expect(stepWeights).toEqual(trainerWeights);
    expect(losses[0]).toBeCloseTo(firstLossByHand, 5);
    // It trained: the end of the run fits its batches better than the start.
    expect(Math.min(...losses.slice(-3))).toBeLessThan(losses[0]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('follows the schedule: warm-up then linear decay, by the optimizer step count', async () => {
    const delta = attach(backbone, lora({ r: 2, seed: 1 }), 'lora');
    const head = new ClassificationHead(backbone.hiddenSize, data.labels, 1);
    const step = createTrainStep({ backbone, deltas: [delta], head, learningRate: 0.1, warmupSteps: 2, totalSteps: 6 });
    const batch = makeBatch(tokenizeSplit(charTokenizer, data.train, 12), [0, 1, 2, 3], 0);
    const lrs: number[] = [];
    for (let s = 0; s < 6; s++) {
      const q = step.queue(batch);
      lrs.push(q.lr);
      await q.loss;
    }
    // warm-up 0.05, 0.1; then 0.1 * (1 - (t - 2) / 4) for t = 3..6.
    [0.05, 0.1, 0.075, 0.05, 0.025, 0].forEach((lr, i) => expect(lrs[i]).toBeCloseTo(lr, 12));
    disposeBatch(batch);
    step.dispose();
    delta.detach();
    head.dispose();
  });

  it('a trained variable the loss does not reach gets a zero gradient instead of failing the step', async () => {
    // `scale` multiplies the pooler's output; `unused` is in no hook (bench's old copy of the step
    // passed it an undefined gradient).
    const spec: DeltaSpec = {
      method: 'partly-used',
      version: '0.0.0',
      coreRange: '^0.1.0',
      options: {},
      attach: (bb, name) => {
        const scale = ownedVariable(tf.ones([1]));
        return defineDelta({
          name,
          method: 'partly-used',
          version: '0.0.0',
          backbone: bb,
          variables: new Map([
            ['scale', scale],
            ['unused', ownedVariable(tf.tensor1d([0.5, -0.25]))],
          ]),
          sites: ['pooler.dense'],
          register: () => [bb.hooks.add('linear', 'pooler.dense', { output: (_x, y) => tf.mul(y, scale) }, { owner: name })],
          config: () => ({}),
        });
      },
    };
    const delta = attach(backbone, spec, 'partly');
    const head = new ClassificationHead(backbone.hiddenSize, data.labels, 2);
    const step = createTrainStep({
      backbone,
      deltas: [delta],
      head,
      learningRate: 0.1,
      weightDecay: 0.5,
      totalSteps: 2,
      schedule: 'constant',
    });
    const batch = makeBatch(tokenizeSplit(charTokenizer, data.train, 12), [0, 1, 2, 3], 0);
    await step.queue(batch).loss;
    // A zero gradient: no Adam update, only the decoupled weight decay, p (1 - lr wd).
    const unused = await delta.variables.get('unused')!.data();
    [0.5, -0.25].forEach((p, i) => expect(unused[i]).toBeCloseTo(p * (1 - 0.1 * 0.5), 6));
    expect((await delta.variables.get('scale')!.data())[0]).not.toBe(1);
    disposeBatch(batch);
    step.dispose();
    delta.detach();
    head.dispose();
  });

  it('full fine-tuning thaws the base parameters for the step and freezes them again on dispose', () => {
    const head = new ClassificationHead(backbone.hiddenSize, data.labels, 2);
    const base = [...backbone.parameters.values()];
    expect(base.every((v) => !v.trainable)).toBe(true);
    const step = createTrainStep({ backbone, fullFineTune: true, head, learningRate: 1e-3, totalSteps: 1 });
    expect(base.every((v) => v.trainable)).toBe(true);
    expect(step.variables).toHaveLength(base.length + 2);
    expect(step.trainsBackbone).toBe(true);
    step.dispose();
    expect(base.every((v) => !v.trainable)).toBe(true);
    head.dispose();
  });
});
