import { DeltaTuneError } from '@deltatune/core';
import { isSftExample } from './datasets/types';
import { checkSftData } from './sft/check';
import type { TrainOptions } from './train-options';

type Rule = { ok: (n: number) => boolean; what: string };
const POSITIVE: Rule = { ok: (n) => n > 0 && Number.isFinite(n), what: 'a positive number' };
const POSITIVE_INT: Rule = { ok: (n) => Number.isInteger(n) && n > 0, what: 'a whole number >= 1' };
const NON_NEGATIVE_INT: Rule = { ok: (n) => Number.isInteger(n) && n >= 0, what: 'a whole number >= 0' };
const NON_NEGATIVE: Rule = { ok: (n) => n >= 0 && !Number.isNaN(n), what: 'a number >= 0' };
const INTEGER: Rule = { ok: (n) => Number.isSafeInteger(n), what: 'a whole number' };

/**
 * Options a run cannot succeed with are refused before anything is computed: a zero batch size
 * used to fail as `shape [0,-Infinity]` deep in tfjs, a negative step count trained nothing and
 * reported success.
 */
export function validateTrainOptions(o: TrainOptions): void {
  const check = (name: keyof TrainOptions, rule: Rule, optional = false) => {
    const v = o[name] as unknown;
    if (v === undefined && optional) return;
    if (typeof v !== 'number' || !rule.ok(v)) {
      throw new DeltaTuneError(
        `train: ${String(name)} must be ${rule.what}, got ${JSON.stringify(v) ?? String(v)}`,
        `pass ${String(name)} as ${rule.what}`,
      );
    }
  };
  check('learningRate', POSITIVE);
  check('batchSize', POSITIVE_INT);
  check('maxLength', POSITIVE_INT);
  check('seed', INTEGER);
  check('steps', POSITIVE_INT, true);
  check('epochs', POSITIVE, true);
  check('evalEvery', NON_NEGATIVE_INT, true);
  check('patience', POSITIVE_INT, true);
  check('warmupSteps', NON_NEGATIVE_INT, true);
  check('weightDecay', NON_NEGATIVE, true);
  check('clipNorm', NON_NEGATIVE, true);
  check('checkpointEvery', POSITIVE_INT, true);
  check('divergenceFactor', { ok: (n) => n > 1, what: 'a number > 1' }, true);
  if (o.runDir !== undefined && !o.checkpoints) {
    // Silently training without the checkpoints asked for would lose them on a kill.
    throw new DeltaTuneError(
      `train: runDir "${o.runDir}" needs a file system, which this entry of @deltatune/train does not use`,
      "in Node, import { train } from '@deltatune/train/node' (checkpoints in runDir/checkpoint); elsewhere pass checkpoints: a store",
    );
  }
  const task = o.task ?? 'classification';
  if (task !== 'classification' && task !== 'lm' && task !== 'sft')
    throw new DeltaTuneError(`train: unknown task "${String(task)}"`, 'use task "classification", "lm" or "sft"');
  if (o.pack && task !== 'sft')
    throw new DeltaTuneError(`train: pack packs instruction-tuning examples, not task "${task}"`, 'use pack with task "sft", or drop it');
  const d = o.dataset;
  for (const split of ['train', 'validation', 'test'] as const) {
    if (!d[split] || d[split].length === 0) {
      throw new DeltaTuneError(
        `dataset ${d.name} has no ${split} examples (train ${d.train?.length ?? 0}, validation ${d.validation?.length ?? 0}, test ${
          d.test?.length ?? 0
        })`,
        'give the dataset more examples (each split needs at least one)',
      );
    }
  }
  if (task === 'sft') checkSftData(d, o.tokenizer);
  else if (isSftExample(d.train[0]))
    throw new DeltaTuneError(
      `dataset ${d.name} holds prompt/completion or messages examples, which task "${task}" does not read`,
      'train them with task "sft"',
    );
  if (task === 'classification' && d.labels.length < 2) {
    throw new DeltaTuneError(
      `dataset ${d.name} has ${d.labels.length} label${d.labels.length === 1 ? ` ("${d.labels[0]}")` : 's'}: a classifier needs at least 2`,
      'use a dataset with at least two classes',
    );
  }
}
