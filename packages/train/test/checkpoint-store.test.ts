import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, type Backbone } from '@deltatune/core';
import { lora } from '@deltatune/lora';
import { ClassificationHead, memoryCheckpointStore, train, type TrainEvent, type TrainOptions } from '@deltatune/train';
import { charTokenizer, letterDataset, tinyBert } from './fixtures/tiny-run';

const data = letterDataset();

describe('checkpoints through an injected store (no file system)', () => {
  const backbone: Backbone = tinyBert(4);
  afterAll(() => backbone.dispose());

  /** A fresh LoRA and head, the same every time (same seeds), under the same name. */
  const fresh = () => ({
    delta: attach(backbone, lora({ r: 2, seed: 9 }), 'lora'),
    head: new ClassificationHead(backbone.hiddenSize, data.labels, 3),
  });
  const options = (o: Partial<TrainOptions>): TrainOptions => ({
    backbone,
    tokenizer: charTokenizer,
    dataset: data,
    learningRate: 1e-2,
    warmupSteps: 2,
    weightDecay: 0.01,
    batchSize: 8,
    maxLength: 12,
    steps: 8,
    evalEvery: 3,
    seed: 5,
    ...o,
  });

  it('a run stopped after its step-3 checkpoint and resumed from the store ends as an uninterrupted run does', async () => {
    const whole = fresh();
    const uninterrupted = await train(options({ deltas: [whole.delta], head: whole.head }));
    const expectedWeights = [...whole.delta.variables.values(), ...whole.head.variables].map((v) => Array.from(v.dataSync()));
    whole.delta.detach();
    whole.head.dispose();

    const store = memoryCheckpointStore();
    const first = fresh();
    const stop = (e: TrainEvent) => {
      if (e.type === 'checkpoint') throw new Error(`stopped at ${e.step} in ${e.dir}`);
    };
    await expect(train(options({ deltas: [first.delta], head: first.head, checkpoints: store, onEvent: stop }))).rejects.toThrow(
      'stopped at 3 in memory',
    );
    expect(JSON.parse(store.files.get('state.json') as string).step).toBe(3);
    first.delta.detach();
    first.head.dispose();

    const before = tf.memory().numTensors;
    const second = fresh();
    const events: TrainEvent[] = [];
    const resumed = await train(
      options({ deltas: [second.delta], head: second.head, checkpoints: store, resume: true, onEvent: (e) => events.push(e) }),
    );
    expect(events.find((e) => e.type === 'resumed')).toEqual({ type: 'resumed', step: 3 });
    expect(events.filter((e) => e.type === 'checkpoint').map((e) => e.type === 'checkpoint' && [e.step, e.dir])).toEqual([
      [6, 'memory'],
      [8, 'memory'],
    ]);
    // The losses of the first three steps come from the checkpoint, the rest were trained again: all as uninterrupted.
    expect(resumed.history).toEqual(uninterrupted.history);
    expect(resumed.evals).toEqual(uninterrupted.evals);
    expect(resumed.bestStep).toBe(uninterrupted.bestStep);
    expect([...second.delta.variables.values(), ...second.head.variables].map((v) => Array.from(v.dataSync()))).toEqual(expectedWeights);
    second.delta.detach();
    second.head.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a checkpoint of other settings is refused, naming the difference', async () => {
    const store = memoryCheckpointStore('page-db');
    const a = fresh();
    await train(options({ deltas: [a.delta], head: a.head, steps: 3, checkpoints: store }));
    await expect(
      train(options({ deltas: [a.delta], head: a.head, steps: 3, learningRate: 3e-2, checkpoints: store, resume: true })),
    ).rejects.toThrow(/the checkpoint in page-db was written by a run with other settings: learning rate \(--lr\) was 0\.01, now 0\.03/);
    a.delta.detach();
    a.head.dispose();
  });

  it('runDir without a store is refused by the file-system-free entry, pointing at @deltatune/train/node', async () => {
    await expect(train(options({ runDir: '/tmp/somewhere' }))).rejects.toThrow(
      /runDir "\/tmp\/somewhere" needs a file system[\s\S]*import \{ train \} from '@deltatune\/train\/node'/,
    );
  });
});
