import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { DeltaTuneError } from './errors';
import type { Delta, DeltaState } from './method';
import { readSafetensors, writeSafetensors, type TensorToWrite } from './safetensors';

/**
 * A delta checkpoint is two files, as PEFT writes them: `adapter_config.json` and
 * `adapter_model.safetensors`. Core turns states into bytes and back; writing them to disk
 * (atomically) is the Node side's job, so core stays free of `fs`.
 */
export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';

export interface CheckpointFiles {
  readonly [CONFIG_FILE]: string;
  readonly [WEIGHTS_FILE]: Uint8Array;
}

export async function encodeCheckpoint(state: DeltaState): Promise<CheckpointFiles> {
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of state.tensors) {
    const dtype = t.dtype === 'int32' ? 'int32' : 'float32';
    const data = (await t.data()) as Float32Array | Int32Array;
    tensors.set(name, { dtype, shape: t.shape, data });
  }
  return {
    [CONFIG_FILE]: JSON.stringify(state.config, null, 2) + '\n',
    [WEIGHTS_FILE]: writeSafetensors(tensors, { format: 'pt' }),
  };
}

/** What is saved beside a delta's own state: PEFT's `base_model_name_or_path`, more config and tensors. */
export interface DeltaFileExtras {
  readonly config?: Record<string, unknown>;
  readonly tensors?: ReadonlyMap<string, Tensor>;
  /** The model the delta was trained on (a Hugging Face folder or id). */
  readonly baseModel?: string;
}

/**
 * A delta's two checkpoint files, in memory: what a Node folder write and a page's download share.
 * Tensors the method made only for saving (transposes) are disposed; its own variables are not.
 */
export async function encodeDelta(delta: Delta, extras: DeltaFileExtras = {}): Promise<CheckpointFiles> {
  const state = delta.save();
  try {
    return await encodeCheckpoint({
      config: {
        ...state.config,
        ...extras.config,
        ...(extras.baseModel !== undefined ? { base_model_name_or_path: extras.baseModel } : {}),
      },
      tensors: new Map([...state.tensors, ...(extras.tensors ?? [])]),
    });
  } finally {
    for (const [name, t] of state.tensors) if (delta.variables.get(name) !== t) t.dispose();
  }
}

/** Parses checkpoint files into a config and tensors (the caller disposes the tensors). */
export function decodeCheckpoint(configText: string, weights: Uint8Array, source = 'checkpoint'): DeltaState {
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw new DeltaTuneError(
      `${source}/${CONFIG_FILE} is not valid JSON (${(e as Error).message})`,
      'restore the file or save the delta again',
    );
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    const kind = config === null ? 'null' : Array.isArray(config) ? 'an array' : `a ${typeof config}`;
    throw new DeltaTuneError(
      `${source}/${CONFIG_FILE} holds ${kind}, not a JSON object`,
      'restore the file or save the delta again (PEFT writes an object such as {"peft_type": "LORA", "r": 8, ...})',
    );
  }
  const { tensors: raw } = readSafetensors(weights, `${source}/${WEIGHTS_FILE}`);
  assertFinite(raw, `${source}/${WEIGHTS_FILE}`);
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of raw) tensors.set(name, tf.tensor(t.data, [...t.shape], t.dtype));
  return { config: config as Record<string, unknown>, tensors };
}

/**
 * Weights with NaN or Infinity load fine and then turn every output into NaN: refuse them at the
 * door, naming the tensor (a diverged run saves such weights; so does a corrupted file).
 */
export function assertFinite(
  tensors: ReadonlyMap<string, { readonly data: ArrayLike<number>; readonly dtype: string }>,
  source: string,
): void {
  for (const [name, t] of tensors) {
    if (t.dtype !== 'float32') continue;
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) {
        throw new DeltaTuneError(
          `${source}: tensor "${name}" holds ${d[i]} at element ${i}`,
          'the weights are corrupted or come from a diverged run: use an earlier checkpoint or train again with a lower --lr',
        );
      }
    }
  }
}

/**
 * Checks names and shapes of loaded tensors against what a delta expects, and reports every
 * mismatch at once: missing, unexpected and wrongly-shaped tensors by name.
 */
export function validateTensors(
  expected: ReadonlyMap<string, readonly number[]>,
  actual: ReadonlyMap<string, { shape: readonly number[]; dtype?: string }>,
  what: string,
): void {
  const problems: string[] = [];
  const missing = [...expected.keys()].filter((k) => !actual.has(k));
  const extra = [...actual.keys()].filter((k) => !expected.has(k));
  if (missing.length) problems.push(`missing ${missing.length}: ${preview(missing)}`);
  if (extra.length) problems.push(`unexpected ${extra.length}: ${preview(extra)}`);
  for (const [name, shape] of expected) {
    const t = actual.get(name);
    if (t && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      problems.push(`${name} has shape [${t.shape}], expected [${shape}]`);
    }
    if (t?.dtype && t.dtype !== 'float32') problems.push(`${name} has dtype ${t.dtype}, expected float32`);
  }
  if (problems.length) {
    throw new DeltaTuneError(
      `${what}: saved tensors do not fit: ${problems.join('; ')}`,
      'load it into the same backbone and method options it was saved from (see its adapter_config.json)',
    );
  }
}

function preview(names: string[]): string {
  return names.length <= 4 ? names.join(', ') : `${names.slice(0, 4).join(', ')}, ... (+${names.length - 4})`;
}
