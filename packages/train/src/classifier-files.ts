import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { assertFinite, DeltaTuneError, readSafetensors, validateTensors, writeSafetensors } from '@deltatune/core';
import { writeFileAtomic } from '@deltatune/node';
import { ClassificationHead } from './head';

/**
 * The task head lives beside the delta as `classifier.json` + `classifier.safetensors`, so
 * `adapter_model.safetensors` stays a pure PEFT adapter that Python loads as is.
 */
export const CLASSIFIER_CONFIG = 'classifier.json';
export const CLASSIFIER_WEIGHTS = 'classifier.safetensors';
/** Beside an LM run's delta: what `deltatune eval` needs to report its perplexity again. */
export const LM_TASK_FILE = 'task.json';

export interface ClassifierConfig {
  readonly labels: readonly string[];
  readonly hidden: number;
  readonly dataset: string;
  readonly maxLength: number;
  readonly batchSize: number;
  readonly model: string;
  /** Split sizes the run was limited to (so `eval` reproduces its numbers by default). */
  readonly limits?: { readonly train?: number; readonly validation?: number; readonly test?: number };
  /** Column names of a user's file dataset. */
  readonly columns?: { readonly text?: string; readonly label?: string };
  /** Several deltas trained together: their subfolders, beside this file. */
  readonly deltas?: readonly string[];
  /** Saved deltas the run attached frozen (`--delta`): they are part of the model the head was trained on. */
  readonly frozenDeltas?: readonly string[];
  /** The run fine-tuned every base weight (`--full`), which only its checkpoint holds. */
  readonly fullFineTune?: boolean;
}

/** The head's two files, for writing beside a delta in one atomic folder write. */
export async function classifierFiles(head: ClassificationHead, config: ClassifierConfig): Promise<Record<string, string | Uint8Array>> {
  const entries = [...head.tensors()];
  const data = await Promise.all(entries.map(([, t]) => t.data() as Promise<Float32Array>));
  const tensors = new Map(entries.map(([k, t], i) => [k, { dtype: 'float32' as const, shape: t.shape, data: data[i] }]));
  return { [CLASSIFIER_WEIGHTS]: writeSafetensors(tensors), [CLASSIFIER_CONFIG]: JSON.stringify(config, null, 2) + '\n' };
}

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
