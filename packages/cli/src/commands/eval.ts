import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE } from '@deltatune/core';
import { loadDelta } from '@deltatune/node';
import { evaluateClassification, limitDataset, loadClassifier, loadDataset, tokenizeSplit } from '@deltatune/train';
import type { Flags } from '../args';
import { modelAndTokenizer, output, prepare } from '../context';
import { ProgressBar, table } from '../progress';

export const EVAL_HELP = `deltatune eval --delta DIR [--model <folder|use-lite>] [--dataset NAME] [--split test|validation]
  [--limit N] [--batch-size B] [--max-length L] [--plugin PKG]... [--backend ...] [--json]
  DIR is a folder written by train (delta/ or head/): its delta and classifier.json are loaded;
  model, dataset, split size, max length and batch size default to what the run used.`;

export async function evalCommand(flags: Flags): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.bool('json');
  const dir = flags.required('delta', 'pass the delta/ (or head/) folder a training run saved');
  const { head, config } = loadClassifier(dir);
  const model = flags.string('model', config.model);
  const datasetName = flags.string('dataset', config.dataset);
  const split = flags.string('split', 'test') as 'test' | 'validation';
  const limit = flags.number('limit') ?? config.limits?.[split];
  const batchSize = flags.number('batch-size', config.batchSize);
  const maxLength = flags.number('max-length', config.maxLength);
  flags.finish();
  const { backbone, tokenizer } = modelAndTokenizer(model, true);
  const delta = existsSync(join(dir, CONFIG_FILE)) ? loadDelta(backbone, dir).delta : undefined;
  const dataset = limitDataset(loadDataset(datasetName, config.columns), { [split]: limit });
  const tokenized = tokenizeSplit(tokenizer!, dataset[split], maxLength);
  const bar = new ProgressBar('eval', tokenized.ids.length, 'ex', json);
  const metrics = await evaluateClassification(backbone, head, tokenized, batchSize, tokenizer!.padId, (done) => bar.update(done));
  output(json, { backend, model, dataset: datasetName, split, delta: dir, method: delta?.method ?? 'head only', ...metrics }, () =>
    table(['dataset', 'split', 'examples', 'accuracy', 'macro-F1', 'loss'], [[datasetName, split, String(metrics.examples), metrics.accuracy.toFixed(4), metrics.macroF1.toFixed(4), metrics.loss.toFixed(4)]]),
  );
  delta?.detach();
  head.dispose();
  backbone.dispose();
}
