import { DeltaTuneError } from '@deltatune/core';
import { join } from 'node:path';
import type { Flags } from '../args';
import { modelAndTokenizer, output, prepare } from '../context';
import { formatSeconds, table } from '../progress';
import { runTraining, type RunSpec } from '../training-run';

export const TRAIN_HELP = `deltatune train --model <folder|use-lite> --dataset <spam|imdb|sotu-party|file.jsonl|file.csv>
  [--method NAME [--opt key=value]...]...   delta methods to attach and train (none: head only)
  [--delta DIR]...                          saved deltas to attach first, frozen (sequential training)
  [--full]                                  full fine-tuning: train every base parameter too
  [--task classification|lm] [--lr 1e-3] [--steps N | --epochs E] [--batch-size 32] [--max-length 64]
  [--delta-lr NAME=LR]...                   a delta's own learning rate (e.g. prompt=0.3; names: the method's)
  [--eval-every 25] [--patience P] [--seed 0] [--warmup 10] [--weight-decay 0] [--clip-norm 1]
  [--text-column COL] [--label-column COL]  columns of a .jsonl/.csv dataset (default text, label)
  [--schedule linear|cosine|constant] [--limit-train N] [--limit-validation N] [--limit-test N]
  [--out DIR] [--resume | --overwrite] [--plugin PKG]... [--backend auto|wasm|webgpu|tensorflow|cpu] [--json]`;

function deltaLearningRates(values: readonly string[]): Record<string, number> | undefined {
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

export function runSpecFromFlags(flags: Flags, backend: string, defaults: Partial<RunSpec> = {}): RunSpec {
  const dataset = flags.string('dataset') ?? defaults.dataset ?? 'spam';
  const methods = flags.methods();
  if (flags.bool('resume') && flags.bool('overwrite'))
    throw new DeltaTuneError(
      '--resume and --overwrite contradict each other',
      'continue the run with --resume, or start it afresh with --overwrite',
    );
  if (flags.string('steps') !== undefined && flags.string('epochs') !== undefined) {
    throw new DeltaTuneError('--steps and --epochs both set the length of the run', 'give one of them: --steps N or --epochs E');
  }
  const label = methods.map((m) => m.name).join('+') || 'head';
  return {
    model: flags.string('model', defaults.model ?? 'use-lite'),
    dataset,
    columns: { text: flags.string('text-column'), label: flags.string('label-column') },
    methods,
    deltas: flags.all('delta'),
    task: flags.choice('task', ['classification', 'lm'] as const, 'classification'),
    learningRate: flags.number('lr', defaults.learningRate ?? 1e-3, 'positive'),
    deltaLearningRates: deltaLearningRates(flags.all('delta-lr')),
    steps: flags.number('steps', undefined, 'positiveInteger') ?? defaults.steps,
    epochs: flags.number('epochs', undefined, 'positive') ?? defaults.epochs,
    batchSize: flags.number('batch-size', defaults.batchSize ?? 32, 'positiveInteger'),
    maxLength: flags.number('max-length', defaults.maxLength ?? 64, 'positiveInteger'),
    evalEvery: flags.number('eval-every', defaults.evalEvery ?? 25, 'nonNegativeInteger'),
    patience: flags.number('patience', undefined, 'positiveInteger') ?? defaults.patience,
    seed: flags.number('seed', defaults.seed ?? 0, 'integer'),
    warmupSteps: flags.number('warmup', defaults.warmupSteps ?? 10, 'nonNegativeInteger'),
    weightDecay: flags.number('weight-decay', 0, 'nonNegative'),
    clipNorm: flags.number('clip-norm', 1, 'nonNegative'),
    schedule: flags.choice('schedule', ['linear', 'cosine', 'constant'] as const, 'linear'),
    outDir:
      flags.string('out') ??
      defaults.outDir ??
      join('runs', `${dataset.replace(/[^\w-]/g, '_')}-${label}-${new Date().toISOString().replace(/[:.]/g, '-')}`),
    resume: flags.bool('resume'),
    overwrite: flags.bool('overwrite'),
    limits: {
      train: flags.number('limit-train', undefined, 'positiveInteger') ?? defaults.limits?.train,
      validation: flags.number('limit-validation', undefined, 'positiveInteger') ?? defaults.limits?.validation,
      test: flags.number('limit-test', undefined, 'positiveInteger') ?? defaults.limits?.test,
    },
    fullFineTune: flags.bool('full'),
    quiet: false,
    backend,
  };
}

export async function trainCommand(flags: Flags): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.bool('json');
  const spec = runSpecFromFlags(flags, backend);
  flags.finish();
  const { backbone, tokenizer } = modelAndTokenizer(spec.model, true);
  const summary = await runTraining(backbone, tokenizer!, spec);
  output(
    json,
    { backend, ...summary },
    () =>
      table(
        ['method', 'trainable', 'trainable %', spec.task === 'lm' ? 'perplexity' : 'accuracy', 'macro-F1', 'time'],
        [
          [
            summary.method,
            String(summary.trainableParameters),
            summary.trainablePercent.toFixed(3),
            spec.task === 'lm' ? summary.perplexity!.toFixed(3) : summary.accuracy!.toFixed(4),
            summary.macroF1 === undefined ? '-' : summary.macroF1.toFixed(4),
            formatSeconds(summary.seconds),
          ],
        ],
      ) + `\nsaved: ${summary.savedTo}\ncurve: ${summary.charts.join(', ')}`,
  );
  backbone.dispose();
}
