import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE, DeltaTuneError } from '@deltatune/core';
import {
  CLASSIFIER_CONFIG,
  LM_TASK_FILE,
  evaluateClassification,
  evaluateLm,
  limitDataset,
  tokenizeSplit,
  type ClassifierConfig,
} from '@deltatune/train';
import { loadClassifier, loadDataset } from '@deltatune/train/node';
import type { Flags } from '../args';
import { modelAndTokenizer, output, prepare } from '../context';
import { ProgressBar, table } from '../progress';
import { loadDeltas } from '../deltas';

export const EVAL_HELP = `deltatune eval --delta DIR [--model <folder|use-lite>] [--dataset NAME] [--split test|validation]
  [--limit N] [--batch-size B] [--max-length L] [--plugin PKG]... [--backend ...] [--json]
  DIR is a folder written by train (delta/, deltas/ or head/): a classification run's delta and classifier.json
  give accuracy / macro-F1 / loss; a --task lm run's delta and task.json give loss and perplexity.
  Model, dataset, split size, max length and batch size default to what the run used.`;

type LmTask = Omit<ClassifierConfig, 'labels' | 'hidden'> & { task: 'lm' };

function readLmTask(dir: string): LmTask | undefined {
  const path = join(dir, LM_TASK_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const t = JSON.parse(readFileSync(path, 'utf8')) as LmTask;
    if (t && t.task === 'lm' && typeof t.dataset === 'string') return t;
  } catch {
    // reported below as a folder eval cannot use
  }
  throw new DeltaTuneError(
    `${path} is not a task file deltatune wrote`,
    'evaluate the delta/ folder of a `deltatune train --task lm` run, or train again',
  );
}

export async function evalCommand(flags: Flags): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.bool('json');
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
  const model = flags.string('model', config.model);
  const datasetName = flags.string('dataset', config.dataset);
  const split = flags.choice('split', ['test', 'validation'] as const, 'test');
  const limit = flags.number('limit', undefined, 'positiveInteger') ?? config.limits?.[split];
  const batchSize = flags.number('batch-size', config.batchSize, 'positiveInteger');
  const maxLength = flags.number('max-length', config.maxLength, 'positiveInteger');
  flags.finish();
  if (config.fullFineTune) {
    classifier?.head.dispose();
    throw new DeltaTuneError(
      `${dir} comes from a full fine-tuning run (--full), whose fine-tuned base weights are kept only in its checkpoint: this head alone would score wrongly`,
      "read the test scores in the run's metrics.json, or train a delta method (--method lora) to get a folder eval can load",
    );
  }
  const { backbone, tokenizer } = modelAndTokenizer(model, true);
  // The whole model the head was trained on: the frozen deltas the run attached, then its own.
  const deltas = [
    ...loadDeltas(backbone, config.frozenDeltas ?? []),
    ...(existsSync(join(dir, CONFIG_FILE)) || config.deltas ? loadDeltas(backbone, [dir]) : []),
  ];
  try {
    const dataset = limitDataset(loadDataset(datasetName, config.columns, { task: lm ? 'lm' : 'classification' }), { [split]: limit });
    if (classifier && JSON.stringify(dataset.labels) !== JSON.stringify(classifier.config.labels)) {
      throw new DeltaTuneError(
        `${datasetName} has labels ${dataset.labels.join(', ')}, but the head in ${dir} was trained on ${classifier.config.labels.join(
          ', ',
        )}`,
        `evaluate on a dataset with the same labels (the run used --dataset ${config.dataset})`,
      );
    }
    const tokenized = tokenizeSplit(tokenizer!, dataset[split], maxLength);
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
      output(json, { ...common, ...metrics }, () =>
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
