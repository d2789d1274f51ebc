import type { Variable } from '@tensorflow/tfjs-core';
import type { TrainOptions } from './train-options';
import { isTrained } from './trained-variables';

/**
 * What a checkpoint must agree with to be resumed, by name, so that a mismatch can say which
 * setting differs.
 */
export function runSettings(o: TrainOptions, variables: readonly Variable[]): Record<string, unknown> {
  return {
    'model architecture': o.backbone.architecture,
    deltas: (o.deltas ?? []).map((d) => [d.name, d.method, isTrained(d), d.parameterCount()]),
    'full fine-tuning': !!o.fullFineTune,
    dataset: [o.dataset.name, o.dataset.train.length, o.dataset.validation.length],
    task: o.task ?? 'classification',
    // Only when set: a new key would change the fingerprint of every earlier run's checkpoint.
    ...(o.pack ? { 'packing (--pack)': true } : {}),
    'learning rate (--lr)': o.learningRate,
    'delta learning rates (--delta-lr)': o.deltaLearningRates ?? {},
    'schedule (--schedule)': o.schedule ?? null,
    'warm-up steps (--warmup)': o.warmupSteps ?? null,
    'weight decay (--weight-decay)': o.weightDecay ?? null,
    'clip norm (--clip-norm)': o.clipNorm ?? null,
    'batch size (--batch-size)': o.batchSize,
    'steps (--steps)': o.steps ?? null,
    'epochs (--epochs)': o.epochs ?? null,
    'max length (--max-length)': o.maxLength,
    'seed (--seed)': o.seed,
    'eval every (--eval-every)': o.evalEvery ?? null,
    'patience (--patience)': o.patience ?? null,
    'trained tensor shapes': variables.map((v) => v.shape),
  };
}
