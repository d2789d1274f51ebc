import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { DeltaTuneError, writeSafetensors, type TensorToWrite } from '@deltatune/core';
import { backboneFromHuggingFace, checkpointNameMap } from '@deltatune/models';
import { USE_LITE, readModelTensors } from '@deltatune/models/node';
import { claimOutputDir, writeFileAtomic } from '@deltatune/node';
import { loadDeltas } from '../deltas';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { output, prepare } from '../context';
import { defineCommand } from './command';

const MERGE_FLAGS = {
  model: flag({ type: 'text', accepts: 'a Hugging Face model folder', help: 'the model the deltas were trained on', placeholder: 'MODEL' }),
  delta: flag({ type: 'text', accepts: 'a saved delta folder', help: 'a delta to fold in', placeholder: 'DIR', repeatable: true }),
  out: flag({ type: 'text', accepts: 'a folder', help: 'where the merged model is written', placeholder: 'DIR' }),
  overwrite: flag({ type: 'switch', help: 'write into an --out that holds other files' }),
  ...COMMON_FLAGS,
} as const;

export const mergeCommand = defineCommand({
  name: 'merge',
  summary: 'fold LoRA/BitFit deltas into a Hugging Face folder',
  about: `deltatune merge --model <HF folder> --delta DIR [--delta DIR]... --out <folder>
  Folds merge-able deltas (LoRA family, BitFit) into the weights and writes a Hugging Face folder
  (config.json + model.safetensors, PyTorch layouts) that transformers loads without PEFT.`,
  flags: MERGE_FLAGS,
  run: (flags) => merge(flags),
});

async function merge(flags: Flags<typeof MERGE_FLAGS>): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.value('json');
  const model = flags.required('model', 'the Hugging Face folder the delta was trained on');
  const deltaDirs = flags.value('delta');
  const out = flags.required('out', 'a folder for the merged model');
  if (model === USE_LITE)
    throw new DeltaTuneError(
      'use-lite is not a Hugging Face folder, so there is nothing to write a merged copy into',
      'apply the delta at load time instead: deltatune forward --model use-lite --delta DIR --merge',
    );
  if (deltaDirs.length === 0) throw new DeltaTuneError('deltatune merge needs at least one --delta', 'e.g. --delta runs/x/delta');
  if (!existsSync(join(model, 'config.json')))
    throw new DeltaTuneError(
      `--model ${model} is not a Hugging Face folder (no config.json)`,
      'pass the folder holding config.json and model.safetensors',
    );
  // Writing into the model's own folder would replace the base weights the delta was trained on.
  if (existsSync(out) && realpathSync(out) === realpathSync(model)) {
    throw new DeltaTuneError(
      `--out ${out} is the --model folder: merging there would overwrite the base weights`,
      `write the merged model to a new folder, e.g. --out ${model.replace(/\/+$/, '')}-merged`,
    );
  }
  claimOutputDir(out, { kind: 'merge', replaces: ['merge'], overwrite: flags.value('overwrite'), settings: { model, deltas: deltaDirs } });
  // One read of the weights serves both the backbone and the tensors it does not hold (heads).
  const original = readModelTensors(resolve(model));
  const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as Record<string, unknown>;
  const backbone = backboneFromHuggingFace(config, original, model);
  const deltas = loadDeltas(backbone, deltaDirs);
  for (const d of deltas) {
    if (!d.merge)
      throw new DeltaTuneError(
        `delta "${d.name}" (${d.method}) cannot be merged into the weights`,
        'merge only LoRA-family and BitFit deltas; keep others as adapters',
      );
    d.merge();
  }
  // Write every tensor of the original file, replacing those the backbone holds (merged now).
  const tensors = new Map<string, TensorToWrite>();
  const toParameter = checkpointNameMap(config.model_type as string, original.keys());
  for (const [name, raw] of original) {
    const key = toParameter(name);
    const ours = key === undefined ? undefined : backbone.parameters.get(key);
    if (key === undefined || !ours) {
      tensors.set(name, raw);
      continue;
    }
    // BERT Linear weights are held [in, out]; the file wants PyTorch's [out, in].
    const transposed = !!backbone.transposedParameters?.has(key);
    const value = transposed ? tf.transpose(ours) : ours;
    tensors.set(name, { dtype: 'float32', shape: raw.shape, data: (await value.data()) as Float32Array });
    if (value !== ours) value.dispose();
  }
  writeFileAtomic(join(out, 'model.safetensors'), writeSafetensors(tensors, { format: 'pt' }));
  for (const extra of [
    'config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'vocab.txt',
    'merges.txt',
    'vocab.json',
    'special_tokens_map.json',
  ]) {
    if (existsSync(join(model, extra))) writeFileAtomic(join(out, extra), readFileSync(join(model, extra)));
  }
  output(
    json,
    { backend, model, merged: deltas.map((d) => ({ name: d.name, method: d.method })), out },
    () => `merged ${deltas.map((d) => `${d.name} (${d.method})`).join(', ')} into ${out}/model.safetensors`,
  );
  for (const d of deltas) d.detach();
  backbone.dispose();
}
