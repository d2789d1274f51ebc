import { join } from 'node:path';
import { DeltaTuneError } from '@deltatune/core';
import type { Flags } from './args';
import { flag } from './command-line/flag-schema';
import { COMMON_FLAGS } from './common-flags';
import { RUN_DEFAULTS, runSpec, type RunSpec } from './run-spec';
import type { RunOutput } from './training-run';

/** The flags that say what a run trains, shared by `train` and (a subset, other defaults) `demo`. */
export const RUN_FLAGS = {
  model: flag({
    type: 'text',
    accepts: 'a Hugging Face model folder or hub id, or use-lite',
    help: 'the backbone to tune',
    placeholder: 'MODEL',
    default: 'use-lite',
  }),
  dataset: flag({
    type: 'text',
    accepts: 'spam, imdb, sotu-party, or a .jsonl/.csv file',
    help: 'the data to train and evaluate on',
    placeholder: 'NAME',
    default: 'spam',
  }),
  'text-column': flag({
    type: 'text',
    accepts: 'a column name',
    help: 'the column of a .jsonl/.csv dataset holding the text',
    placeholder: 'COL',
    defaultText: 'text',
  }),
  'label-column': flag({
    type: 'text',
    accepts: 'a column name',
    help: 'the column of a .jsonl/.csv dataset holding the label',
    placeholder: 'COL',
    defaultText: 'label',
  }),
  method: flag({
    type: 'text',
    accepts: 'a registered method (below)',
    help: 'a delta method to attach and train, each followed by its --opt (none: only the head trains)',
    placeholder: 'NAME',
    repeatable: true,
  }),
  opt: flag({
    type: 'text',
    accepts: 'key=value',
    help: 'an option of the --method before it',
    placeholder: 'KEY=VALUE',
    repeatable: true,
  }),
  delta: flag({
    type: 'text',
    accepts: 'a folder a run saved',
    help: 'a saved delta to attach first, frozen (sequential training)',
    placeholder: 'DIR',
    repeatable: true,
  }),
  full: flag({ type: 'switch', help: 'full fine-tuning: train every base parameter too' }),
  task: flag({
    type: { choices: ['classification', 'lm', 'sft'] },
    help: 'a classification head, language modelling, or instruction tuning (sft: the loss on the completions only)',
    placeholder: 'TASK',
    default: RUN_DEFAULTS.task,
  }),
  pack: flag({
    type: 'switch',
    help: 'sft: pack training examples into rows of --max-length (faster; attention crosses the examples of a row)',
  }),
  lr: flag({ type: 'positive', help: 'peak learning rate', placeholder: 'LR', default: RUN_DEFAULTS.learningRate }),
  'delta-lr': flag({
    type: 'text',
    accepts: 'NAME=LR',
    help: "a delta's own peak learning rate, by its name: the method's, then lora_2, lora_3... (e.g. prompt=0.3)",
    placeholder: 'NAME=LR',
    repeatable: true,
  }),
  steps: flag({ type: 'positiveInteger', help: 'training steps', placeholder: 'N', defaultText: 'one epoch' }),
  epochs: flag({ type: 'positive', help: 'passes over the training split, in place of --steps', placeholder: 'E', defaultText: '1' }),
  'batch-size': flag({ type: 'positiveInteger', help: 'examples per step', placeholder: 'N', default: RUN_DEFAULTS.batchSize }),
  'max-length': flag({
    type: 'positiveInteger',
    help: 'tokens per example (longer ones are cut)',
    placeholder: 'N',
    default: RUN_DEFAULTS.maxLength,
  }),
  'eval-every': flag({
    type: 'nonNegativeInteger',
    help: 'evaluate on the validation split, and checkpoint, every N steps; 0: at the end only',
    placeholder: 'N',
    default: RUN_DEFAULTS.evalEvery,
  }),
  patience: flag({ type: 'positiveInteger', help: 'stop after P evaluations without improvement', placeholder: 'P' }),
  seed: flag({ type: 'integer', help: 'seed of the initial values and the data order', placeholder: 'N', default: RUN_DEFAULTS.seed }),
  warmup: flag({ type: 'nonNegativeInteger', help: 'warm-up steps', placeholder: 'N', default: RUN_DEFAULTS.warmupSteps }),
  'weight-decay': flag({ type: 'nonNegative', help: 'AdamW weight decay', placeholder: 'W', default: RUN_DEFAULTS.weightDecay }),
  'clip-norm': flag({ type: 'nonNegative', help: 'global gradient-norm clip; 0: none', placeholder: 'C', default: RUN_DEFAULTS.clipNorm }),
  schedule: flag({
    type: { choices: ['linear', 'cosine', 'constant'] },
    help: 'learning-rate schedule after the warm-up',
    placeholder: 'KIND',
    default: RUN_DEFAULTS.schedule,
  }),
  'limit-train': flag({ type: 'positiveInteger', help: 'use at most N examples of the training split', placeholder: 'N' }),
  'limit-validation': flag({ type: 'positiveInteger', help: 'use at most N examples of the validation split', placeholder: 'N' }),
  'limit-test': flag({ type: 'positiveInteger', help: 'use at most N examples of the test split', placeholder: 'N' }),
} as const;

export const TRAIN_FLAGS = {
  ...RUN_FLAGS,
  out: flag({
    type: 'text',
    accepts: 'a folder',
    help: 'where the run is written',
    placeholder: 'DIR',
    defaultText: 'runs/<dataset>-<methods>-<time>',
  }),
  resume: flag({ type: 'switch', help: 'continue the run in --out from its last checkpoint (same settings)' }),
  overwrite: flag({ type: 'switch', help: "write into an --out holding an earlier run (only deltatune's own files are replaced)" }),
  ...COMMON_FLAGS,
} as const;

/** `--delta-lr NAME=LR`, repeated: each delta's own rate by its name. */
export function deltaLearningRates(values: readonly string[]): Record<string, number> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, number> = {};
  for (const v of values) {
    const [name, lr] = v.split('=');
    const rate = Number(lr);
    if (!name || lr === undefined || !(rate > 0) || !Number.isFinite(rate))
      throw new DeltaTuneError(
        `--delta-lr ${v}: expected NAME=LR with a positive rate`,
        "e.g. --delta-lr prompt=0.3 (the name is the method's, or method_2 for a second one)",
      );
    out[name] = rate;
  }
  return out;
}

/** `train`'s flags as a RunSpec. */
export function runSpecFromFlags(flags: Flags<typeof TRAIN_FLAGS>): RunSpec {
  return runSpec({
    model: flags.value('model'),
    data: {
      dataset: flags.value('dataset'),
      columns: { text: flags.value('text-column'), label: flags.value('label-column') },
      limits: { train: flags.value('limit-train'), validation: flags.value('limit-validation'), test: flags.value('limit-test') },
    },
    deltas: { frozen: flags.value('delta'), create: flags.methods() },
    train: {
      task: flags.value('task'),
      pack: flags.value('pack') || undefined,
      fullFineTune: flags.value('full'),
      learningRate: flags.value('lr'),
      deltaLearningRates: deltaLearningRates(flags.value('delta-lr')),
      steps: flags.value('steps'),
      epochs: flags.value('epochs'),
      batchSize: flags.value('batch-size'),
      maxLength: flags.value('max-length'),
      evalEvery: flags.value('eval-every'),
      patience: flags.value('patience'),
      seed: flags.value('seed'),
      warmupSteps: flags.value('warmup'),
      weightDecay: flags.value('weight-decay'),
      clipNorm: flags.value('clip-norm'),
      schedule: flags.value('schedule'),
    },
  });
}

/** Where `train` writes, from its flags: `--out`, or a new folder named after the run. */
export function runOutputFromFlags(flags: Flags<typeof TRAIN_FLAGS>, spec: RunSpec, backend: string): RunOutput {
  const resume = flags.value('resume');
  const overwrite = flags.value('overwrite');
  if (resume && overwrite)
    throw new DeltaTuneError(
      '--resume and --overwrite contradict each other',
      'continue the run with --resume, or start it afresh with --overwrite',
    );
  const methods = spec.deltas.create.map((m) => m.name).join('+') || 'head';
  const time = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = flags.value('out') ?? join('runs', `${spec.data.dataset.replace(/[^\w-]/g, '_')}-${methods}-${time}`);
  return { dir, resume, overwrite, quiet: false, backend };
}
