import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { attach, countParameters, getMethod, uniqueDeltaName, type Backbone, type Delta } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { claimOutputDir, saveDelta, writeFileAtomic } from '@deltatune/node';
import { loadDeltas } from './deltas';
import {
  CLASSIFIER_CONFIG,
  CLASSIFIER_WEIGHTS,
  classifierFiles,
  limitDataset,
  LM_TASK_FILE,
  type ClassificationMetrics,
  type LmMetrics,
  type ScheduleKind,
  type TaskKind,
  type TrainEvent,
} from '@deltatune/train';
import { loadDataset, train } from '@deltatune/train/node';
import { lineChartSvg, writeChart } from './plot';
import { formatSeconds, ProgressBar } from './progress';

export interface MethodRequest {
  readonly name: string;
  readonly options: Record<string, string>;
}

export interface RunSpec {
  readonly model: string;
  readonly dataset: string;
  /** Column names for a user's .jsonl/.csv file. */
  readonly columns?: { text?: string; label?: string };
  readonly methods: readonly MethodRequest[];
  /** Saved deltas to attach first (frozen unless `trainLoaded`). */
  readonly deltas?: readonly string[];
  readonly task: TaskKind;
  readonly learningRate: number;
  /** `--delta-lr NAME=LR`: a delta's own peak learning rate. */
  readonly deltaLearningRates?: Readonly<Record<string, number>>;
  readonly steps?: number;
  readonly epochs?: number;
  readonly batchSize: number;
  readonly maxLength: number;
  readonly evalEvery: number;
  readonly patience?: number;
  readonly seed: number;
  readonly warmupSteps: number;
  readonly weightDecay: number;
  readonly clipNorm: number;
  readonly schedule: ScheduleKind;
  readonly outDir: string;
  readonly resume: boolean;
  /** Write into an --out that holds an earlier run or other files (only deltatune's own files are replaced). */
  readonly overwrite?: boolean;
  readonly limits: { train?: number; validation?: number; test?: number };
  readonly fullFineTune?: boolean;
  readonly quiet: boolean;
  readonly backend: string;
  /** Label for tables: the methods joined, or "head only". */
  readonly label?: string;
}

export interface RunSummary {
  readonly method: string;
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
}

/**
 * Attaches each requested method (options parsed by the method itself) under its own name.
 * `initText` (prompt tuning) is tokenized here, with the backbone's tokenizer.
 */
export function attachMethods(backbone: Backbone, methods: readonly MethodRequest[], seed: number, tokenizer?: TextTokenizer): Delta[] {
  return methods.map((m) => {
    const method = getMethod(m.name);
    const options = method.options.parse(m.options) as Record<string, unknown>;
    if (typeof options.initText === 'string' && tokenizer) {
      options.initTokenIds = tokenizer.encodeOne(options.initText).ids;
      options.init ??= 'text';
    }
    // The method's name, then lora_2, ...: unique also beside deltas loaded from folders (--delta).
    return attach(backbone, method.create({ seed, ...options }), uniqueDeltaName(backbone, m.name));
  });
}

/** One training run on an already-loaded backbone: attach, train, save, chart; deltas detached after. */
export async function runTraining(backbone: Backbone, tokenizer: TextTokenizer, spec: RunSpec): Promise<RunSummary> {
  const dataset = limitDataset(loadDataset(spec.dataset, spec.columns, { task: spec.task }), spec.limits);
  const log = (line: string) => !spec.quiet && process.stderr.write(line + '\n');
  // Before any work: a folder holding an earlier run or the user's files is refused, an unwritable one fails now.
  const claim = claimOutputDir(spec.outDir, {
    kind: 'train',
    resume: spec.resume,
    overwrite: spec.overwrite,
    settings: { model: spec.model, dataset: spec.dataset, methods: spec.methods, task: spec.task },
  });
  if (claim.state === 'overwrite')
    log(`  writing over the earlier content of ${spec.outDir} (only deltatune's own files are replaced; nothing else is deleted)`);
  log(
    `  data: ${dataset.name}: train ${dataset.train.length}, validation ${dataset.validation.length}, test ${dataset.test.length}` +
      (spec.task === 'lm' ? '' : `; labels ${dataset.labels.map((l, i) => `${i}=${l}`).join(', ')}`),
  );
  if (dataset.test.length < 30)
    log(
      `  warning: the test split has only ${dataset.test.length} examples, so its scores are rough estimates; use more data for a reliable figure`,
    );
  const loaded = loadDeltas(backbone, spec.deltas ?? []);
  for (const d of loaded) d.trainable = false;
  const created = attachMethods(backbone, spec.methods, spec.seed, tokenizer);
  const deltas = [...loaded, ...created];
  const label = spec.label ?? (spec.fullFineTune ? 'full fine-tuning' : deltas.length ? deltas.map((d) => d.name).join('+') : 'head only');
  const bars = new Map<string, ProgressBar>();
  let trainBar: ProgressBar | undefined;
  const onEvent = (e: TrainEvent) => {
    if (e.type === 'phase' && e.name === 'train') trainBar = new ProgressBar(`${label}`.slice(0, 10), e.total ?? 0, 'steps', spec.quiet);
    if (e.type === 'phase' && e.name === 'features') bars.set('features', new ProgressBar('features', e.total ?? 0, 'ex', spec.quiet));
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
    if (e.type === 'fresh') log(`  --resume: no checkpoint in ${e.dir}, so training starts fresh`);
  };
  try {
    const result = await train({
      backbone,
      tokenizer,
      dataset,
      task: spec.task,
      deltas,
      fullFineTune: spec.fullFineTune,
      learningRate: spec.learningRate,
      deltaLearningRates: spec.deltaLearningRates,
      schedule: spec.schedule,
      warmupSteps: spec.warmupSteps,
      weightDecay: spec.weightDecay,
      clipNorm: spec.clipNorm,
      batchSize: spec.batchSize,
      steps: spec.steps,
      epochs: spec.epochs,
      maxLength: spec.maxLength,
      evalEvery: spec.evalEvery,
      patience: spec.patience,
      seed: spec.seed,
      runDir: spec.outDir,
      resume: spec.resume,
      onEvent,
    });
    const counts = countParameters(backbone, result.head?.variables ?? []);
    // One trained delta: delta/ (a PEFT folder, the head beside it). Several: deltas/<name>/ each, the
    // head and task file in deltas/ itself, listing them, so `eval --delta <run>/deltas` loads them all.
    const trainedDeltas = created;
    const savedTo =
      trainedDeltas.length === 1
        ? join(spec.outDir, 'delta')
        : trainedDeltas.length
        ? join(spec.outDir, 'deltas')
        : join(spec.outDir, 'head');
    const runInfo = {
      dataset: spec.dataset,
      maxLength: spec.maxLength,
      batchSize: spec.batchSize,
      model: spec.model,
      limits: spec.limits,
      columns: spec.columns,
      ...(trainedDeltas.length > 1 ? { deltas: trainedDeltas.map((d) => d.name) } : {}),
      ...(spec.deltas?.length ? { frozenDeltas: spec.deltas.map((d) => resolve(d)) } : {}),
      ...(spec.fullFineTune ? { fullFineTune: true } : {}),
    };
    // What `eval` needs to score the run again: the head (classification) or the task file (LM).
    const taskFiles = result.head
      ? await classifierFiles(result.head, { labels: dataset.labels, hidden: backbone.hiddenSize, ...runInfo })
      : spec.task === 'lm' && trainedDeltas.length
      ? { [LM_TASK_FILE]: JSON.stringify({ task: 'lm', ...runInfo }, null, 2) + '\n' }
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
      join(spec.outDir, 'curve'),
      await lineChartSvg(
        `${label} on ${spec.dataset} (${backbone.architecture})`,
        [
          { name: 'training loss', points: result.history.map((h) => [h.step, h.loss] as const), color: '#1f77b4' },
          spec.task === 'lm'
            ? { name: 'validation loss', points: result.evals.map((e) => [e.step, e.metrics.loss] as const), color: '#d62728' }
            : {
                name: 'validation accuracy',
                points: result.evals.map((e) => [e.step, e.metrics.accuracy] as const),
                color: '#d62728',
                right: true,
              },
        ],
        { x: 'step', left: 'loss', right: spec.task === 'lm' ? undefined : 'accuracy' },
      ),
    );
    const trainablePercent = (100 * result.trainedParameters) / counts.total;
    const summary: RunSummary = {
      method: label,
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
    };
    writeFileAtomic(
      join(spec.outDir, 'metrics.json'),
      JSON.stringify(
        {
          ...summary,
          model: spec.model,
          dataset: spec.dataset,
          backend: spec.backend,
          seed: spec.seed,
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
        spec.task === 'lm' ? `perplexity ${test.perplexity?.toFixed(3)}` : `accuracy ${test.accuracy?.toFixed(4)}`
      } in ${formatSeconds(result.seconds)}; saved to ${savedTo}`,
    );
    result.head?.dispose();
    return summary;
  } finally {
    for (const d of deltas) d.detach();
  }
}
