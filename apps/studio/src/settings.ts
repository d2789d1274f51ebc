import { DeltaTuneError } from '@deltatune/core';
import type { TrainRequest, TrainSettings } from './protocol';
import { $ } from './page';

function value(id: string): string {
  return ($(id) as HTMLInputElement).value.trim();
}

/** A whole number from an input, at least `min`; the message names the field as the page labels it. */
function integer(id: string, label: string, min: number, example: string): number {
  const raw = value(id);
  const n = Number(raw);
  if (raw === '' || !Number.isInteger(n) || n < min) {
    throw new DeltaTuneError(
      `${label} must be a whole number${min > 0 ? ` of at least ${min}` : ' (0 or more)'}, got "${raw}"`,
      `enter e.g. ${example}`,
    );
  }
  return n;
}

export function readSettings(): TrainSettings {
  const lr = Number(value('lr'));
  if (!(lr > 0) || !Number.isFinite(lr))
    throw new DeltaTuneError(`learning rate must be a positive number, got "${value('lr')}"`, 'enter e.g. 2e-3');
  return {
    steps: integer('steps', 'steps', 1, '120'),
    batchSize: integer('batch-size', 'batch size', 1, '32'),
    maxLength: integer('max-length', 'max length', 2, '64'),
    learningRate: lr,
    warmupSteps: integer('warmup', 'warm-up steps', 0, '0'),
    evalEvery: integer('eval-every', 'validate every', 0, '40'),
    seed: integer('seed', 'seed', 0, '0'),
  };
}

/** Split sizes to use (empty: the whole split), as `deltatune train --limit-*` takes them. */
export function readLimits(): TrainRequest['limits'] {
  const out: Record<string, number> = {};
  for (const [split, id] of [
    ['train', 'limit-train'],
    ['validation', 'limit-validation'],
    ['test', 'limit-test'],
  ] as const) {
    if (value(id) !== '') out[split] = integer(id, `${split} examples`, 1, split === 'validation' ? '300' : '1000');
  }
  return out;
}
