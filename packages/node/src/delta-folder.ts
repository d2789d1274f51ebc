import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import {
  attach,
  CONFIG_FILE,
  decodeCheckpoint,
  DeltaTuneError,
  encodeDelta,
  findMethodByPeftType,
  getMethod,
  WEIGHTS_FILE,
  uniqueDeltaName,
  type Backbone,
  type Delta,
  type DeltaSpec,
  type DeltaFileExtras,
  type DeltaState,
} from '@deltatune/core';
import * as tf from '@tensorflow/tfjs-core';
import { recoverFolder, writeFolderAtomic } from './atomic';

/** Extra tensors/config saved beside a delta (a task head: PEFT's `modules_to_save`). */
export interface SaveExtras extends DeltaFileExtras {
  /** More files for the folder (a task head), written in the same atomic swap as the delta. */
  readonly files?: Readonly<Record<string, string | Uint8Array>>;
}

/** Saves a delta as `adapter_config.json` + `adapter_model.safetensors`, atomically. */
export async function saveDelta(dir: string, delta: Delta, extras: SaveExtras = {}): Promise<void> {
  const files = await encodeDelta(delta, extras);
  // The weights first, the config last: a folder is loadable only once its config is in place.
  writeFolderAtomic(dir, { ...extras.files, [WEIGHTS_FILE]: files[WEIGHTS_FILE], [CONFIG_FILE]: files[CONFIG_FILE] });
}

/** Reads a delta folder (ours or PEFT's) without attaching it. The caller disposes the tensors. */
export function readDeltaFolder(dir: string): DeltaState {
  if (!existsSync(dir)) {
    recoverFolder(dir);
    if (!existsSync(dir))
      throw new DeltaTuneError(
        `delta folder ${dir} does not exist`,
        'point --delta at a folder saved by deltatune (<run>/delta) or by PEFT (save_pretrained)',
      );
  }
  if (!statSync(dir).isDirectory()) {
    throw new DeltaTuneError(`${dir} is a file; a delta is a folder`, `pass the folder that holds ${CONFIG_FILE} and ${WEIGHTS_FILE}`);
  }
  const configPath = join(dir, CONFIG_FILE);
  const weightsPath = join(dir, WEIGHTS_FILE);
  if (!existsSync(configPath)) {
    throw new DeltaTuneError(`${dir} has no ${CONFIG_FILE}`, 'point --delta at a folder saved by deltatune or by PEFT (save_pretrained)');
  }
  if (!existsSync(weightsPath)) {
    throw new DeltaTuneError(
      `${dir} has no ${WEIGHTS_FILE}`,
      'PEFT folders with adapter_model.bin only: re-save with safe_serialization=True',
    );
  }
  return decodeCheckpoint(readFileSync(configPath, 'utf8'), readFileSync(weightsPath), dir);
}

/** The method that wrote a delta config: ours by `deltatune.method`, PEFT's by `peft_type`. */
export function methodForConfig(config: Record<string, unknown>, dir = 'delta'): string {
  const ours = (config.deltatune as { method?: unknown } | undefined)?.method;
  if (typeof ours === 'string' && ours) return ours;
  const peftType = config.peft_type;
  if (typeof peftType === 'string' && peftType) {
    const method = findMethodByPeftType(peftType);
    if (method) return method.name;
    throw new DeltaTuneError(
      `${dir} is a PEFT ${peftType} adapter, and no registered method reads ${peftType}`,
      peftType === 'IA3'
        ? 'IA3 ships as an example plugin: in the deltatune repository pass --plugin ./examples/plugin-ia3 (or your own IA3 package)'
        : 'pass the plugin package that reads it: --plugin <package or folder> (LORA, PREFIX_TUNING and PROMPT_TUNING are built in)',
    );
  }
  throw new DeltaTuneError(
    `${dir}/${CONFIG_FILE} names no method (no "deltatune.method" or "peft_type")`,
    'save the delta with deltatune or PEFT',
  );
}

/**
 * Attaches a saved delta to a backbone: finds its method in the registry, re-creates it from the
 * config, validates and loads the tensors. (A task head is saved beside it, in classifier.*.)
 */
export function loadDelta(
  backbone: Backbone,
  dir: string,
  name?: string,
): { delta: Delta; spec: DeltaSpec<unknown>; config: Record<string, unknown> } {
  const state = readDeltaFolder(dir);
  try {
    checkArchitecture(state.config, backbone, dir);
    const methodName = methodForConfig(state.config, dir);
    const method = getMethod(methodName, installHint(methodName));
    let spec: DeltaSpec<unknown>;
    try {
      spec = method.fromConfig(state.config);
    } catch (e) {
      // A config the method cannot read is bad input, whatever the method threw.
      const what = (e as Error).message.split('\n')[0];
      throw new DeltaTuneError(
        `${dir}: ${what}`,
        e instanceof DeltaTuneError && e.fix ? e.fix : `restore ${join(dir, CONFIG_FILE)} or save the delta again`,
      );
    }
    const delta = attach(backbone, spec, uniqueDeltaName(backbone, name ?? defaultName(state.config, dir)));
    try {
      delta.load(state);
    } catch (e) {
      delta.detach();
      if (e instanceof DeltaTuneError) throw new DeltaTuneError(`${dir}: ${e.message.split('\n')[0]}`, e.fix);
      throw e;
    }
    return { delta, spec, config: state.config };
  } finally {
    tf.dispose([...state.tensors.values()]);
  }
}

/** PEFT's class names (`auto_mapping.base_model_class`) by the architecture deltatune calls them. */
const PEFT_CLASSES: Record<string, RegExp> = { bert: /^Bert/, roberta: /^Roberta/, gpt2: /^GPT2/ };

/**
 * A delta trained on another architecture fails later with "target matches no site" or a shape
 * mismatch, which sends the user to the wrong fix: say what it was trained on.
 */
function checkArchitecture(config: Record<string, unknown>, backbone: Backbone, dir: string): void {
  const ours = (config.deltatune as { architecture?: unknown } | undefined)?.architecture;
  const peftClass = (config.auto_mapping as { base_model_class?: unknown } | undefined)?.base_model_class;
  let trainedOn: string | undefined;
  if (typeof ours === 'string') trainedOn = ours;
  else if (typeof peftClass === 'string') trainedOn = Object.keys(PEFT_CLASSES).find((a) => PEFT_CLASSES[a].test(peftClass)) ?? undefined;
  if (trainedOn === undefined || trainedOn === backbone.architecture) return;
  const base = typeof config.base_model_name_or_path === 'string' ? ` (base_model_name_or_path: ${config.base_model_name_or_path})` : '';
  throw new DeltaTuneError(
    `${dir} was trained on a ${
      typeof peftClass === 'string' && typeof ours !== 'string' ? peftClass : trainedOn
    } model, and this model is ${backbone.architecture}`,
    `load it onto the model it was trained on${base}`,
  );
}

/** Our folders keep the name the delta was saved under; PEFT's (all `default`) take the folder's name. */
function defaultName(config: Record<string, unknown>, dir: string): string {
  const ours = (config.deltatune as { name?: unknown } | undefined)?.name;
  if (typeof ours === 'string' && ours) return ours;
  const folder = basename(resolve(dir)).replace(/[^\w.-]+/g, '_');
  return folder && folder !== '.' ? folder : 'default';
}

/** Built-in methods come with the CLI; anything else is a third-party plugin. */
const PACKAGES: Record<string, string> = {
  lora: '@deltatune/lora',
  adapter: '@deltatune/adapter',
  bitfit: '@deltatune/bitfit',
  prefix: '@deltatune/prefix',
  prompt: '@deltatune/prefix',
};

function installHint(method: string): string {
  const pkg = PACKAGES[method];
  return pkg
    ? `this delta was saved by method "${method}": npm install ${pkg} and register it (the deltatune CLI has it built in)`
    : `this delta was saved by the third-party method "${method}": pass the plugin that provides it, --plugin <package or folder> (in the deltatune repository, the IA3 example: --plugin ./examples/plugin-ia3)`;
}
