import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE, DeltaTuneError } from '@deltatune/core';
import {
  CLASSIFIER_CONFIG,
  LM_TASK_FILE,
  checkSftData,
  evaluateClassification,
  evaluateLm,
  limitDataset,
  tokenizeSftSplit,
  tokenizeSplit,
  type ClassifierConfig,
  type Dataset,
  type TokenizedSplit,
} from '@deltatune/train';
import { loadClassifier, loadDataset } from '@deltatune/train/node';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { modelAndTokenizer, output, prepare, resolveModel } from '../context';
import { ProgressBar, table } from '../progress';
import { loadDeltas } from '../deltas';
import { defineCommand } from './command';

const EVAL_FLAGS = {
  delta: flag({
    type: 'text',
    accepts: 'a folder train wrote',
    help: "the run's delta/, deltas/ or head/ folder to evaluate",
    placeholder: 'DIR',
  }),
  model: flag({
    type: 'text',
    accepts: 'a Hugging Face model folder, or use-lite',
    help: 'the backbone',
    placeholder: 'MODEL',
    defaultText: "the run's",
  }),
  dataset: flag({
    type: 'text',
    accepts: 'a dataset name or file',
    help: 'the data to score',
    placeholder: 'NAME',
    defaultText: "the run's",
  }),
  split: flag({ type: { choices: ['test', 'validation'] }, help: 'which split to score', placeholder: 'SPLIT', default: 'test' }),
  limit: flag({ type: 'positiveInteger', help: 'score at most N examples of the split', placeholder: 'N', defaultText: "the run's" }),
  'batch-size': flag({ type: 'positiveInteger', help: 'examples per batch', placeholder: 'N', defaultText: "the run's" }),
  'max-length': flag({ type: 'positiveInteger', help: 'tokens per example', placeholder: 'N', defaultText: "the run's" }),
  ...COMMON_FLAGS,
} as const;

export const evalCommand = defineCommand({
  name: 'eval',
  summary: 'evaluate a saved delta + head on a split',
  about: `deltatune eval --delta DIR [--split test|validation]
  DIR is a folder written by train (delta/, deltas/ or head/): a classification run's delta and classifier.json
  give accuracy / macro-F1 / loss; a --task lm run's delta and task.json give loss and perplexity, a --task sft
  run's the loss and perplexity of the completions (assistant turns) only.
  Model, dataset, split size, max length and batch size default to what the run used.`,
  flags: EVAL_FLAGS,
  run: (flags) => evaluate(flags),
});

type LmTask = Omit<ClassifierConfig, 'labels' | 'hidden'> & { task: 'lm' | 'sft' };

function readLmTask(dir: string): LmTask | undefined {
  const path = join(dir, LM_TASK_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const t = JSON.parse(readFileSync(path, 'utf8')) as LmTask;
    if (t && (t.task === 'lm' || t.task === 'sft') && typeof t.dataset === 'string') return t;
  } catch {
    // reported below as a folder eval cannot use
  }
  throw new DeltaTuneError(
    `${path} is not a task file deltatune wrote`,
    'evaluate the delta/ folder of a `deltatune train --task lm` (or sft) run, or train again',
  );
}

async function evaluate(flags: Flags<typeof EVAL_FLAGS>): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.value('json');
  const dir = flags.required('delta', 'pass the delta/ (or head/) folder a training run saved');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new DeltaTuneError(
      `--delta ${dir} is not a folder`,
      'pass the delta/ (or head/) folder a training run saved, e.g. --delta runs/demo/lora/delta',
    );
  }
  const lm = existsSync(join(dir, CLASSIFIER_CONFIG)) ? undefined : readLmTask(dir);
  const classifier = lm ? undefined : loadClassifier(dir);
  const config = (lm ?? classifier!.config) as LmTask | ClassifierConfig;
  const model = flags.value('model') ?? config.model;
  const datasetName = flags.value('dataset') ?? config.dataset;
  const split = flags.value('split');
  const limit = flags.value('limit') ?? config.limits?.[split];
  const batchSize = flags.value('batch-size') ?? config.batchSize;
  const maxLength = flags.value('max-length') ?? config.maxLength;
  if (config.fullFineTune) {
    classifier?.head.dispose();
    throw new DeltaTuneError(
      `${dir} comes from a full fine-tuning run (--full), whose fine-tuned base weights are kept only in its checkpoint: ` +
        'this head alone would score wrongly',
      "read the test scores in the run's metrics.json, or train a delta method (--method lora) to get a folder eval can load",
    );
  }
  const { backbone, tokenizer } = modelAndTokenizer(await resolveModel(model, json), true);
  // The whole model the head was trained on: the frozen deltas the run attached, then its own.
  const deltas = [
    ...loadDeltas(backbone, config.frozenDeltas ?? []),
    ...(existsSync(join(dir, CONFIG_FILE)) || config.deltas ? loadDeltas(backbone, [dir]) : []),
  ];
  try {
    const task = lm?.task ?? 'classification';
    const dataset: Dataset<unknown> = limitDataset(loadDataset(datasetName, config.columns, { task }), { [split]: limit });
    if (classifier && JSON.stringify(dataset.labels) !== JSON.stringify(classifier.config.labels)) {
      throw new DeltaTuneError(
        `${datasetName} has labels ${dataset.labels.join(', ')}, but the head in ${dir} was trained on ${classifier.config.labels.join(
          ', ',
        )}`,
        `evaluate on a dataset with the same labels (the run used --dataset ${config.dataset})`,
      );
    }
    let tokenized: TokenizedSplit;
    let dropped = 0;
    if (task === 'sft') {
      // Scored as the run scored it: the completions' tokens only, examples cut before theirs left out.
      checkSftData(dataset, tokenizer!);
      const sft = tokenizeSftSplit(tokenizer!, dataset[split], maxLength, `${datasetName} ${split}`);
      tokenized = sft;
      dropped = sft.dropped;
    } else tokenized = tokenizeSplit(tokenizer!, (dataset as Dataset)[split], maxLength);
    if (tokenized.ids.length === 0)
      throw new DeltaTuneError(
        `the ${split} split of ${datasetName} is empty`,
        'evaluate on the other split: --split validation, or give more data',
      );
    const common = {
      backend,
      model,
      dataset: datasetName,
      split,
      delta: dir,
      method: deltas.length ? deltas.map((d) => d.method).join('+') : 'head only',
    };
    if (lm) {
      const metrics = await evaluateLm(backbone, tokenized, batchSize, tokenizer!.padId);
      if (dropped)
        process.stderr.write(
          `  warning: ${dropped} ${split} examples left out: --max-length ${maxLength} cuts them before their completion\n`,
        );
      output(json, { ...common, task, ...metrics, ...(task === 'sft' ? { dropped } : {}) }, () =>
        table(
          ['dataset', 'split', 'examples', 'loss', 'perplexity'],
          [[datasetName, split, String(metrics.examples), metrics.loss.toFixed(4), metrics.perplexity.toFixed(3)]],
        ),
      );
      return;
    }
    const bar = new ProgressBar('eval', tokenized.ids.length, 'ex', json);
    const metrics = await evaluateClassification(backbone, classifier!.head, tokenized, batchSize, tokenizer!.padId, (done) =>
      bar.update(done),
    );
    output(json, { ...common, ...metrics }, () =>
      table(
        ['dataset', 'split', 'examples', 'accuracy', 'macro-F1', 'loss'],
        [[datasetName, split, String(metrics.examples), metrics.accuracy.toFixed(4), metrics.macroF1.toFixed(4), metrics.loss.toFixed(4)]],
      ),
    );
  } finally {
    for (const d of deltas) d.detach();
    classifier?.head.dispose();
    backbone.dispose();
  }
}
