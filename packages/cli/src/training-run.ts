import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { countParameters, DeltaTuneError, type Backbone } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { claimOutputDir, saveDelta, writeFileAtomic } from '@deltatune/node';
import {
  checkSftData,
  CLASSIFIER_CONFIG,
  CLASSIFIER_WEIGHTS,
  classifierFiles,
  limitDataset,
  LM_TASK_FILE,
  type ClassificationMetrics,
  type LmMetrics,
  type TrainEvent,
} from '@deltatune/train';
import { loadDataset, train } from '@deltatune/train/node';
import { lineChartSvg, writeChart } from './plot';
import { formatSeconds, ProgressBar } from './progress';
import { attachRunDeltas, summarizeDeltas, type DeltaSummary, type RunDeltas } from './run-deltas';
import type { RunSpec } from './run-spec';
import { SAMPLES_FILE, sampleLines, testSamples } from './sft-samples';

/** Where a run of `train` or `demo` writes, and how it reports: what a RunSpec leaves out (an experiment cell writes no folder). */
export interface RunOutput {
  readonly dir: string;
  /** Continue the run in `dir` from its checkpoint. */
  readonly resume: boolean;
  /** Write into a `dir` that holds an earlier run or other files (only deltatune's own files are replaced). */
  readonly overwrite: boolean;
  readonly quiet: boolean;
  /** Recorded in metrics.json. */
  readonly backend: string;
}

export interface RunSummary {
  readonly method: string;
  /** Each delta by the name it got (core's rule: the method's, then `_2`...), and its own learning rate. */
  readonly deltas: DeltaSummary[];
  readonly trainableParameters: number;
  readonly totalParameters: number;
  readonly trainablePercent: number;
  readonly accuracy?: number;
  readonly macroF1?: number;
  readonly perplexity?: number;
  readonly validationAccuracy?: number;
  readonly testLoss: number;
  readonly seconds: number;
  readonly steps: number;
  readonly bestStep: number;
  readonly savedTo: string;
  readonly charts: string[];
  /** `--task sft`: greedy generations of a few test examples, before and after training (samples.jsonl). */
  readonly samples?: string;
  /** `--task sft`: per split, the examples --max-length cut before their completion (left out). */
  readonly dropped?: Readonly<Record<'train' | 'validation' | 'test', number>>;
}

/** The trainer's options for a run's settings: the spec's, with its deltas' own rates resolved by the names they got. */
export function trainSettings(spec: RunSpec, deltas: RunDeltas): RunSpec['train'] {
  return { ...spec.train, deltaLearningRates: deltas.learningRates };
}

/** One training run on an already-loaded backbone: attach, train, save, chart; deltas detached after. */
export async function runTraining(backbone: Backbone, tokenizer: TextTokenizer, spec: RunSpec, out: RunOutput): Promise<RunSummary> {
  if (spec.deltas.schedule === 'sequential')
    // One trainer run writes one checkpoint; stages one after another are what an experiment's cells run.
    throw new DeltaTuneError(
      'a sequential schedule of deltas runs in deltatune experiment only',
      'give the grid entry "schedule": "sequential"',
    );
  const task = spec.train.task;
  const dataset = limitDataset(loadDataset(spec.data.dataset, spec.data.columns, { task }), spec.data.limits);
  // A conversation the tokenizer cannot render fails here, before the folder is claimed.
  if (task === 'sft') checkSftData(dataset, tokenizer);
  const lmLike = task !== 'classification';
  const log = (line: string) => !out.quiet && process.stderr.write(line + '\n');
  // Before any work: a folder holding an earlier run or the user's files is refused, an unwritable one fails now.
  const claim = claimOutputDir(out.dir, {
    kind: 'train',
    resume: out.resume,
    overwrite: out.overwrite,
    settings: {
      model: spec.model,
      dataset: spec.data.dataset,
      methods: spec.deltas.create,
      task,
      ...(spec.train.pack ? { pack: true } : {}),
    },
  });
  if (claim.state === 'overwrite')
    log(`  writing over the earlier content of ${out.dir} (only deltatune's own files are replaced; nothing else is deleted)`);
  log(
    `  data: ${dataset.name}: train ${dataset.train.length}, validation ${dataset.validation.length}, test ${dataset.test.length}` +
      (lmLike ? '' : `; labels ${dataset.labels.map((l, i) => `${i}=${l}`).join(', ')}`),
  );
  if (dataset.test.length < 30)
    log(
      `  warning: the test split has only ${dataset.test.length} examples, so its scores are rough estimates; ` +
        'use more data for a reliable figure',
    );
  const runDeltas = attachRunDeltas(backbone, spec, tokenizer);
  const { created } = runDeltas;
  const deltas = [...runDeltas.frozen, ...created];
  const label =
    spec.label ?? (spec.train.fullFineTune ? 'full fine-tuning' : deltas.length ? deltas.map((d) => d.name).join('+') : 'head only');
  const bars = new Map<string, ProgressBar>();
  let trainBar: ProgressBar | undefined;
  const onEvent = (e: TrainEvent) => {
    if (e.type === 'phase' && e.name === 'train') trainBar = new ProgressBar(`${label}`.slice(0, 10), e.total ?? 0, 'steps', out.quiet);
    if (e.type === 'phase' && e.name === 'features') bars.set('features', new ProgressBar('features', e.total ?? 0, 'ex', out.quiet));
    if (e.type === 'progress') bars.get('features')?.update(e.done);
    if (e.type === 'step') trainBar?.update(e.step, `loss ${e.loss.toFixed(4)}  ${e.examplesPerSecond.toFixed(1)} ex/s`);
    if (e.type === 'eval')
      log(
        `  step ${e.step}: validation ${Object.entries(e.metrics)
          .filter(([k]) => k !== 'examples')
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(', ')}`,
      );
    if (e.type === 'resumed') log(`  resumed from the checkpoint at step ${e.step}`);
    if (e.type === 'dropped')
      log(
        `  warning: ${e.dropped} of ${e.examples} ${e.split} examples left out: --max-length ${e.maxLength} cuts them ` +
          'before their completion, leaving nothing to train on (raise --max-length to keep them)',
      );
    if (e.type === 'packed') log(`  packed ${e.examples} training examples into ${e.rows} rows of at most ${spec.train.maxLength} tokens`);
    if (e.type === 'fresh') log(`  --resume: no checkpoint in ${e.dir}, so training starts fresh`);
  };
  try {
    // Before: the model as training starts (new deltas at their initial values: LoRA's change nothing).
    const before = task === 'sft' ? await testSamples(backbone, tokenizer, dataset, spec.train.maxLength) : undefined;
    const result = await train({
      ...trainSettings(spec, runDeltas),
      backbone,
      tokenizer,
      dataset,
      deltas,
      runDir: out.dir,
      resume: out.resume,
      onEvent,
    });
    const counts = countParameters(backbone, result.head?.variables ?? []);
    // One trained delta: delta/ (a PEFT folder, the head beside it). Several: deltas/<name>/ each, the
    // head and task file in deltas/ itself, listing them, so `eval --delta <run>/deltas` loads them all.
    const trainedDeltas = created;
    const savedTo =
      trainedDeltas.length === 1 ? join(out.dir, 'delta') : trainedDeltas.length ? join(out.dir, 'deltas') : join(out.dir, 'head');
    const runInfo = {
      dataset: spec.data.dataset,
      maxLength: spec.train.maxLength,
      batchSize: spec.train.batchSize,
      model: spec.model,
      limits: spec.data.limits,
      columns: spec.data.columns,
      ...(trainedDeltas.length > 1 ? { deltas: trainedDeltas.map((d) => d.name) } : {}),
      ...(spec.deltas.frozen.length ? { frozenDeltas: spec.deltas.frozen.map((d) => resolve(d)) } : {}),
      ...(spec.train.fullFineTune ? { fullFineTune: true } : {}),
    };
    // What `eval` needs to score the run again: the head (classification) or the task file (LM).
    const taskFiles = result.head
      ? await classifierFiles(result.head, { labels: dataset.labels, hidden: backbone.hiddenSize, ...runInfo })
      : lmLike && trainedDeltas.length
        ? { [LM_TASK_FILE]: JSON.stringify({ task, ...runInfo }, null, 2) + '\n' }
        : {};
    if (trainedDeltas.length === 1) {
      // One swap for the delta and its head: a kill leaves the old pair or the new, never a mix.
      await saveDelta(savedTo, trainedDeltas[0], { baseModel: spec.model, files: taskFiles });
    } else {
      for (const d of trainedDeltas) await saveDelta(join(savedTo, d.name), d, { baseModel: spec.model });
      // The head lists the subfolders, so it goes last.
      for (const [name, data] of Object.entries(taskFiles)) writeFileAtomic(join(savedTo, name), data);
    }
    // A run of the other task in this folder earlier (--overwrite) left its own task file: eval would read it.
    for (const stale of result.head ? [LM_TASK_FILE] : [CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS])
      rmSync(join(savedTo, stale), { force: true });
    const test = result.test as Partial<ClassificationMetrics & LmMetrics>;
    const validation = result.validation as Partial<ClassificationMetrics & LmMetrics> | undefined;
    const charts = await writeChart(
      join(out.dir, 'curve'),
      await lineChartSvg(
        `${label} on ${spec.data.dataset} (${backbone.architecture})`,
        [
          { name: 'training loss', points: result.history.map((h) => [h.step, h.loss] as const), color: '#1f77b4' },
          lmLike
            ? { name: 'validation loss', points: result.evals.map((e) => [e.step, e.metrics.loss] as const), color: '#d62728' }
            : {
                name: 'validation accuracy',
                points: result.evals.map((e) => [e.step, e.metrics.accuracy] as const),
                color: '#d62728',
                right: true,
              },
        ],
        { x: 'step', left: 'loss', right: lmLike ? undefined : 'accuracy' },
      ),
    );
    let samplesPath: string | undefined;
    if (before) {
      samplesPath = join(out.dir, SAMPLES_FILE);
      writeFileAtomic(samplesPath, sampleLines(before, await testSamples(backbone, tokenizer, dataset, spec.train.maxLength)));
    }
    const trainablePercent = (100 * result.trainedParameters) / counts.total;
    const summary: RunSummary = {
      method: label,
      deltas: summarizeDeltas(runDeltas),
      trainableParameters: result.trainedParameters,
      totalParameters: counts.total,
      trainablePercent,
      accuracy: test.accuracy,
      macroF1: test.macroF1,
      perplexity: test.perplexity,
      validationAccuracy: validation?.accuracy,
      testLoss: test.loss ?? NaN,
      seconds: result.seconds,
      steps: result.steps,
      bestStep: result.bestStep,
      savedTo,
      charts,
      ...(samplesPath ? { samples: samplesPath } : {}),
      ...(result.dropped ? { dropped: result.dropped } : {}),
    };
    writeFileAtomic(
      join(out.dir, 'metrics.json'),
      JSON.stringify(
        {
          ...summary,
          model: spec.model,
          dataset: spec.data.dataset,
          backend: out.backend,
          seed: spec.train.seed,
          history: result.history,
          evals: result.evals,
          test: result.test,
        },
        null,
        2,
      ) + '\n',
    );
    log(
      `  ${label}: test ${
        task === 'sft'
          ? `completion loss ${test.loss?.toFixed(4)}, perplexity ${test.perplexity?.toFixed(3)}`
          : task === 'lm'
            ? `perplexity ${test.perplexity?.toFixed(3)}`
            : `accuracy ${test.accuracy?.toFixed(4)}`
      } in ${formatSeconds(result.seconds)}; saved to ${savedTo}`,
    );
    result.head?.dispose();
    return summary;
  } finally {
    for (const d of deltas) d.detach();
  }
}
