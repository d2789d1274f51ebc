import { DeltaTuneError } from '@deltatune/core';
import type { TrainOptions } from '@deltatune/train';

/** A delta to create and train: a registered method and its options as `--opt` strings (a grid's are turned into these). */
export interface MethodRequest {
  readonly name: string;
  readonly options: Readonly<Record<string, string>>;
  /** This delta's own peak learning rate (a grid delta's `learningRate`); `--delta-lr NAME=LR` gives one by the delta's name. */
  readonly learningRate?: number;
}

/**
 * The trainer's settings a run fixes: `TrainOptions` less what is loaded (backbone, tokenizer,
 * dataset, deltas) and what is wired up (events, checkpoints). Those with a default are always set,
 * so a run says what it ran.
 */
export type TrainSettings = Required<
  Pick<
    TrainOptions,
    | 'task'
    | 'learningRate'
    | 'batchSize'
    | 'maxLength'
    | 'seed'
    | 'schedule'
    | 'warmupSteps'
    | 'weightDecay'
    | 'clipNorm'
    | 'evalEvery'
    | 'fullFineTune'
  >
> &
  Pick<TrainOptions, 'steps' | 'epochs' | 'patience' | 'deltaLearningRates' | 'pack'>;

/**
 * One training run, whichever command asks for it: `train` and `demo` build it from their flags,
 * `experiment` from a grid cell, all through `runSpec`. Deltas are named by core's rule (the
 * method's name, then `_2`, `_3`...: `attach` without a name), so `--delta-lr lora_2=...` and a
 * grid's second LoRA mean the same delta.
 */
export interface RunSpec {
  readonly model: string;
  readonly data: {
    readonly dataset: string;
    /** Column names for a user's .jsonl/.csv file. */
    readonly columns?: { readonly text?: string; readonly label?: string };
    readonly limits: { readonly train?: number; readonly validation?: number; readonly test?: number };
  };
  readonly deltas: {
    /** Saved deltas attached first, frozen (sequential training across runs). */
    readonly frozen: readonly string[];
    /** Deltas created and trained, in order. */
    readonly create: readonly MethodRequest[];
    /** Several created deltas: trained together, or one after another (the steps split evenly, one head). */
    readonly schedule: 'simultaneous' | 'sequential';
  };
  readonly train: TrainSettings;
  /** For tables and charts; without one, the deltas' names joined ("head only" without deltas). */
  readonly label?: string;
}

/** The defaults of a run's settings, in one place: `train`'s flags show them in `--help`, a grid cell gets those it does not set. */
export const RUN_DEFAULTS = {
  task: 'classification',
  learningRate: 1e-3,
  batchSize: 32,
  maxLength: 64,
  seed: 0,
  schedule: 'linear',
  warmupSteps: 10,
  weightDecay: 0,
  clipNorm: 1,
  evalEvery: 25,
  fullFineTune: false,
} as const satisfies Partial<TrainSettings>;

export interface RunParts {
  readonly model: string;
  readonly data: RunSpec['data'];
  readonly deltas?: Partial<RunSpec['deltas']>;
  readonly train?: Partial<TrainSettings>;
  readonly label?: string;
}

/** The one way a RunSpec is made: the defaults filled in, contradictions refused. */
export function runSpec(parts: RunParts): RunSpec {
  const train: TrainSettings = { ...RUN_DEFAULTS, ...definedOnly(parts.train ?? {}) };
  if (train.steps !== undefined && train.epochs !== undefined)
    throw new DeltaTuneError('--steps and --epochs both set the length of the run', 'give one of them: --steps N or --epochs E');
  if (train.pack && train.task !== 'sft')
    throw new DeltaTuneError(`--pack packs instruction-tuning examples, not --task ${train.task}`, 'add --task sft, or drop --pack');
  return {
    model: parts.model,
    data: parts.data,
    deltas: { frozen: parts.deltas?.frozen ?? [], create: parts.deltas?.create ?? [], schedule: parts.deltas?.schedule ?? 'simultaneous' },
    train,
    label: parts.label,
  };
}

/** `{ steps: undefined }` must not hide a default. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
