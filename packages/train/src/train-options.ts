import type { Backbone, Delta } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import type { Dataset, SftDataset } from './datasets/types';
import type { ClassificationHead } from './head';
import type { ClassificationMetrics, LmMetrics } from './metrics';
import type { RunCheckpointStore } from './run-checkpoint';
import type { ScheduleKind } from './schedule';

/**
 * `classification`: a head over the pooled output. `lm`: causal language modelling of every token.
 * `sft`: instruction tuning of a decoder, the loss on the completions (assistant turns) only.
 */
export type TaskKind = 'classification' | 'lm' | 'sft';

export interface TrainOptions {
  readonly backbone: Backbone;
  readonly tokenizer: TextTokenizer;
  /** Labelled texts (classification, lm), or prompt/completion and conversation examples (sft). */
  readonly dataset: Dataset | SftDataset;
  readonly task?: TaskKind;
  /**
   * `sft`: pack the training examples into rows of `maxLength` (`packSplit`: attention crosses the
   * examples of a row); `batchSize` then counts packed rows. Validation and test are scored
   * unpacked, so their numbers do not depend on it.
   */
  readonly pack?: boolean;
  /**
   * Attached deltas; those with `trainable` set are trained, unless switched off (`active` false) or
   * merged: those do not take part in the forward pass, and weight decay alone would shrink them.
   */
  readonly deltas?: readonly Delta[];
  /** Also train every base parameter (full fine-tuning, the reference point). */
  readonly fullFineTune?: boolean;
  readonly learningRate: number;
  /**
   * Peak learning rates of single deltas by name, in place of `learningRate` for their variables
   * (same schedule). Prompt and prefix tuning usually want one 10-100x LoRA's.
   */
  readonly deltaLearningRates?: Readonly<Record<string, number>>;
  readonly schedule?: ScheduleKind;
  readonly warmupSteps?: number;
  readonly weightDecay?: number;
  /** Global gradient-norm clip; 0 or Infinity disables it. */
  readonly clipNorm?: number;
  readonly batchSize: number;
  /** Steps to run; `epochs` is used when absent. */
  readonly steps?: number;
  readonly epochs?: number;
  readonly maxLength: number;
  /** Evaluate on validation every N steps (and at the end). 0: only at the end. */
  readonly evalEvery?: number;
  /** Stop after this many evaluations without improvement of validation accuracy (loss for LM). */
  readonly patience?: number;
  readonly seed: number;
  /**
   * Where checkpoints go on disk (`runDir/checkpoint`); none: no checkpoints. Only the trainer of
   * `@deltatune/train/node` has a disk; elsewhere pass `checkpoints`.
   */
  readonly runDir?: string;
  /** Where checkpoints go, in place of `runDir`: a store (`memoryCheckpointStore()`, or a page's own). */
  readonly checkpoints?: RunCheckpointStore;
  readonly resume?: boolean;
  readonly checkpointEvery?: number;
  /**
   * A loss above this many times the first step's (at least 1) is divergence, reported as a NaN
   * loss is: an exploding run (lr 1e6: loss 1e7) stays finite for a while. Default 100.
   */
  readonly divergenceFactor?: number;
  readonly onEvent?: (event: TrainEvent) => void;
  /**
   * Stops training after the step in flight when aborted (a page's stop button). The run then
   * validates, restores its best state and scores the test split as at the end: `stopped` is set.
   */
  readonly signal?: AbortSignal;
  /** Continue with this head (sequential stages share one); a new one is made when absent. */
  readonly head?: ClassificationHead;
}

export type TrainEvent =
  | { type: 'phase'; name: string; total?: number }
  | { type: 'progress'; done: number; total: number }
  | { type: 'step'; step: number; total: number; loss: number; lr: number; examplesPerSecond: number; etaSeconds: number }
  | { type: 'eval'; step: number; metrics: Record<string, number> }
  /** `dir`: the checkpoint store's location (a folder on disk). */
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'resumed'; step: number }
  /** `sft`: examples of a split left out, truncation at `maxLength` having cut away all they would train on. */
  | { type: 'dropped'; split: 'train' | 'validation' | 'test'; dropped: number; examples: number; maxLength: number }
  /** `sft` with `pack`: the training examples went into this many rows. */
  | { type: 'packed'; examples: number; rows: number }
  /** `resume` was asked for, and there was no checkpoint to continue from. */
  | { type: 'fresh'; dir: string };

export interface TrainResult {
  readonly steps: number;
  readonly seconds: number;
  readonly bestStep: number;
  readonly history: ReadonlyArray<{ step: number; loss: number; lr: number }>;
  readonly evals: ReadonlyArray<{ step: number; metrics: Record<string, number> }>;
  readonly validation: ClassificationMetrics | LmMetrics;
  readonly test: ClassificationMetrics | LmMetrics;
  readonly head?: ClassificationHead;
  readonly trainedParameters: number;
  /** The `signal` stopped training at `steps`, before the planned number. */
  readonly stopped?: boolean;
  /** `sft`: per split, the examples truncation left nothing to train on (left out). */
  readonly dropped?: Readonly<Record<'train' | 'validation' | 'test', number>>;
}
