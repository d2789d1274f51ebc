import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  attach,
  CONFIG_FILE,
  decodeCheckpoint,
  DeltaTuneError,
  encodeCheckpoint,
  findMethodByPeftType,
  getMethod,
  WEIGHTS_FILE,
  type Backbone,
  type Delta,
  type DeltaSpec,
  type DeltaState,
} from '@deltatune/core';
import * as tf from '@tensorflow/tfjs-core';
import { writeFolderAtomic } from './atomic';

/** Extra tensors/config saved beside a delta (a task head: PEFT's `modules_to_save`). */
export interface SaveExtras {
  readonly config?: Record<string, unknown>;
  readonly tensors?: ReadonlyMap<string, tf.Tensor>;
}

/** Saves a delta as `adapter_config.json` + `adapter_model.safetensors`, atomically. */
export async function saveDelta(dir: string, delta: Delta, extras: SaveExtras = {}): Promise<void> {
  const state = delta.save();
  const merged: DeltaState = {
    config: { ...state.config, ...extras.config },
    tensors: new Map([...state.tensors, ...(extras.tensors ?? [])]),
  };
  const files = await encodeCheckpoint(merged);
  // Tensors the method made only for saving (transposes) are disposed; its own variables are not.
  for (const [name, t] of state.tensors) if (!delta.variables.has(name) || delta.variables.get(name) !== t) t.dispose();
  writeFolderAtomic(dir, { ...files });
}

/** Reads a delta folder (ours or PEFT's) without attaching it. The caller disposes the tensors. */
export function readDeltaFolder(dir: string): DeltaState {
  const configPath = join(dir, CONFIG_FILE);
  const weightsPath = join(dir, WEIGHTS_FILE);
  if (!existsSync(configPath)) {
    throw new DeltaTuneError(`${dir} has no ${CONFIG_FILE}`, 'point --delta at a folder saved by deltatune or by PEFT (save_pretrained)');
  }
  if (!existsSync(weightsPath)) {
    throw new DeltaTuneError(`${dir} has no ${WEIGHTS_FILE}`, 'PEFT folders with adapter_model.bin only: re-save with safe_serialization=True');
  }
  return decodeCheckpoint(readFileSync(configPath, 'utf8'), readFileSync(weightsPath), dir);
}

/** The method that wrote a delta config: ours by `deltatune.method`, PEFT's by `peft_type`. */
export function methodForConfig(config: Record<string, unknown>, dir = 'delta'): string {
  const ours = (config.deltatune as { method?: string } | undefined)?.method;
  if (ours) return ours;
  const peftType = config.peft_type as string | undefined;
  if (peftType) {
    const method = findMethodByPeftType(peftType);
    if (method) return method.name;
    throw new DeltaTuneError(
      `${dir} is a PEFT ${peftType} adapter, and no registered method reads ${peftType}`,
      `install and register the method for it (LORA: @deltatune/lora), or pass --plugin <package>`,
    );
  }
  throw new DeltaTuneError(`${dir}/${CONFIG_FILE} names no method (no "deltatune.method" or "peft_type")`, 'save the delta with deltatune or PEFT');
}

/**
 * Attaches a saved delta to a backbone: finds its method in the registry, re-creates it from the
 * config, validates and loads the tensors. (A task head is saved beside it, in classifier.*.)
 */
export function loadDelta(backbone: Backbone, dir: string, name?: string): { delta: Delta; spec: DeltaSpec<unknown>; config: Record<string, unknown> } {
  const state = readDeltaFolder(dir);
  const methodName = methodForConfig(state.config, dir);
  const method = getMethod(methodName, `this delta was saved by method "${methodName}": npm install @deltatune/${methodName} (or the plugin that provides it) and register it`);
  const spec = method.fromConfig(state.config);
  const deltaName = name ?? ((state.config.deltatune as { name?: string } | undefined)?.name ?? 'default');
  const delta = attach(backbone, spec, deltaName);
  try {
    delta.load(state);
  } catch (e) {
    delta.detach();
    throw e;
  } finally {
    tf.dispose([...state.tensors.values()]);
  }
  return { delta, spec, config: state.config };
}
