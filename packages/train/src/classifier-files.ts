import { writeSafetensors } from '@deltatune/core';
import type { ClassificationHead } from './head';

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
