import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backbone } from '@deltatune/core';
import { loadBackbone } from '@deltatune/models/node';
import { Flags } from '../src/args';
import { parseCommandLine } from '../src/command-line/parse-line';
import { cellRunSpec } from '../src/experiment/cell-run-spec';
import { cellsOf, type Grid } from '../src/experiment/grid';
import { registerBuiltinMethods } from '../src/methods';
import { attachRunDeltas, type RunDeltas } from '../src/run-deltas';
import { runSpecFromFlags, TRAIN_FLAGS } from '../src/train-flags';

const FIX = fileURLToPath(new URL('../../../fixtures/peft-reference/', import.meta.url));

const trainSpec = (...args: string[]) => runSpecFromFlags(new Flags(parseCommandLine('train', args, TRAIN_FLAGS), 'train', TRAIN_FLAGS));

/** A one-cell grid: the given deltas, one task, one seed, one budget. */
function cellSpec(deltas: NonNullable<Grid['methods'][number]['deltas']>) {
  const grid: Grid = {
    name: 'g',
    model: 'use-lite',
    target: 0.9,
    methods: [{ name: 'two loras', deltas }],
    tasks: [{ dataset: 'spam', limits: { train: 48 } }],
    seeds: [3],
    budgets: [{ name: 'tiny', steps: 20, batchSize: 8, maxLength: 16, learningRate: 0.003, evalEvery: 5 }],
  };
  return cellRunSpec(cellsOf(grid)[0], grid.model);
}

describe('one run spec and one delta-naming rule for train and experiment', () => {
  let backbone: Backbone;
  beforeAll(() => {
    registerBuiltinMethods();
    backbone = loadBackbone(join(FIX, 'bert'));
  });
  afterAll(() => backbone.dispose());

  /** Attaches a run's deltas and reports, by name, each one's rank and own learning rate; detaches them again. */
  function attached(spec: Parameters<typeof attachRunDeltas>[1]) {
    const deltas: RunDeltas = attachRunDeltas(backbone, spec);
    try {
      return {
        names: deltas.created.map((d) => d.name),
        // LoRA on query and value of the fixture's 2 layers (32 -> 32): 2 * 2 * r * (32 + 32) parameters.
        ranks: Object.fromEntries(deltas.created.map((d) => [d.name, d.parameterCount() / (2 * 2 * 64)])),
        learningRates: deltas.learningRates,
      };
    } finally {
      for (const d of deltas.created) d.detach();
    }
  }

  it('two LoRAs are lora and lora_2 in both, and --delta-lr lora_2 means the grid delta that gives its own rate', () => {
    const fromTrain = attached(
      trainSpec('--method', 'lora', '--opt', 'r=2', '--method', 'lora', '--opt', 'r=4', '--delta-lr', 'lora_2=0.05'),
    );
    const fromGrid = attached(
      cellSpec([
        { method: 'lora', options: { r: 2 } },
        { method: 'lora', options: { r: 4 }, learningRate: 0.05 },
      ]),
    );
    const expected = { names: ['lora', 'lora_2'], ranks: { lora: 2, lora_2: 4 }, learningRates: { lora_2: 0.05 } };
    expect(fromTrain).toEqual(expected);
    expect(fromGrid).toEqual(expected);
  });

  it('the names follow the method, not the position: lora, bitfit, lora_2', () => {
    expect(attached(trainSpec('--method', 'lora', '--method', 'bitfit', '--method', 'lora')).names).toEqual(['lora', 'bitfit', 'lora_2']);
    expect(attached(cellSpec([{ method: 'lora' }, { method: 'bitfit' }, { method: 'lora' }])).names).toEqual(['lora', 'bitfit', 'lora_2']);
  });

  it('a grid cell gives the trainer the settings train gives for the same run (defaults the grid has no field for included)', () => {
    const fromGrid = cellSpec([{ method: 'lora' }]);
    // The budget's warm-up is 10% of its steps; the rest is what the train flags say.
    const fromTrain = trainSpec(
      ...['--method', 'lora', '--steps', '20', '--batch-size', '8', '--max-length', '16', '--lr', '0.003'],
      ...['--eval-every', '5', '--seed', '3', '--warmup', '2', '--limit-train', '48'],
    );
    expect(fromGrid.train).toEqual(fromTrain.train);
    expect(fromGrid.train).toMatchObject({ schedule: 'linear', weightDecay: 0, clipNorm: 1, task: 'classification' });
    expect(fromGrid.deltas.create).toEqual(fromTrain.deltas.create);
    expect(fromGrid.data.dataset).toBe(fromTrain.data.dataset);
    expect(fromGrid.data.limits).toEqual(fromTrain.data.limits);
  });
});
