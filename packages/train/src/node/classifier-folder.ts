import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { assertFinite, DeltaTuneError, readSafetensors, validateTensors } from '@deltatune/core';
import { writeFileAtomic } from '@deltatune/node';
import { CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS, ClassificationHead, classifierFiles, type ClassifierConfig } from '../index';

/** Writes the head's two files into `dir`, each atomically. */
export async function saveClassifier(dir: string, head: ClassificationHead, config: ClassifierConfig): Promise<void> {
  const files = await classifierFiles(head, config);
  writeFileAtomic(join(dir, CLASSIFIER_WEIGHTS), files[CLASSIFIER_WEIGHTS]);
  writeFileAtomic(join(dir, CLASSIFIER_CONFIG), files[CLASSIFIER_CONFIG]);
}

export function loadClassifier(dir: string): { head: ClassificationHead; config: ClassifierConfig } {
  const configPath = join(dir, CLASSIFIER_CONFIG);
  if (!existsSync(configPath)) {
    throw new DeltaTuneError(
      `${dir} has no ${CLASSIFIER_CONFIG} (nor task.json): it holds no trained task head`,
      'evaluate a folder written by `deltatune train` (its delta/ or head/ folder)',
    );
  }
  let config: ClassifierConfig;
  try {
    config = JSON.parse(readFileSync(configPath, 'utf8')) as ClassifierConfig;
  } catch (e) {
    throw new DeltaTuneError(
      `${configPath} is not valid JSON (${(e as Error).message.split('\n')[0]})`,
      'restore the file, or train again',
    );
  }
  const ok =
    config &&
    Array.isArray(config.labels) &&
    config.labels.length >= 2 &&
    Number.isInteger(config.hidden) &&
    typeof config.dataset === 'string';
  if (!ok) throw new DeltaTuneError(`${configPath} lacks its labels, hidden size or dataset`, 'restore the file, or train again');
  if (!existsSync(join(dir, CLASSIFIER_WEIGHTS)))
    throw new DeltaTuneError(`${dir} has ${CLASSIFIER_CONFIG} but no ${CLASSIFIER_WEIGHTS}`, 'restore the file, or train again');
  const { tensors } = readSafetensors(readFileSync(join(dir, CLASSIFIER_WEIGHTS)), join(dir, CLASSIFIER_WEIGHTS));
  assertFinite(tensors, join(dir, CLASSIFIER_WEIGHTS));
  validateTensors(
    new Map([
      ['classifier.weight', [config.hidden, config.labels.length]],
      ['classifier.bias', [config.labels.length]],
    ]),
    tensors,
    `${dir}/${CLASSIFIER_WEIGHTS}`,
  );
  const head = new ClassificationHead(config.hidden, config.labels, 0);
  const loaded = new Map([...tensors].map(([k, t]) => [k, tf.tensor(t.data, [...t.shape])]));
  head.load(loaded);
  tf.dispose([...loaded.values()]);
  return { head, config };
}
