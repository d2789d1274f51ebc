import { existsSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { isAbsolute, join, normalize, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  DeltaTuneError,
  readSafetensorsHeader,
  writeSafetensors,
  type Backbone,
  type RawTensor,
  type SafetensorsDtype,
  type TensorToWrite,
} from '@deltatune/core';
import { mergeWeightDeltas, TASK_COMBINATIONS, type MergeWeightDeltasOptions, type TaskCombination } from '@deltatune/compose';
import { backboneFromHuggingFace, checkpointNameMap } from '@deltatune/models';
import { USE_LITE, readModelTensors } from '@deltatune/models/node';
import { claimOutputDir, writeFileAtomic } from '@deltatune/node';
import { loadDeltas } from '../deltas';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { output, prepare, resolveModel } from '../context';
import { defineCommand } from './command';

const MERGE_FLAGS = {
  model: flag({
    type: 'text',
    accepts: 'a Hugging Face model folder or hub id',
    help: 'the model the deltas were trained on',
    placeholder: 'MODEL',
  }),
  delta: flag({ type: 'text', accepts: 'a saved delta folder', help: 'a delta to fold in', placeholder: 'DIR', repeatable: true }),
  out: flag({ type: 'text', accepts: 'a folder', help: 'where the merged model is written', placeholder: 'DIR' }),
  overwrite: flag({ type: 'switch', help: 'write into an --out that holds other files' }),
  dtype: flag({
    type: { choices: ['float32', 'bfloat16', 'float16'] },
    help: "the floating-point weights' dtype (config.json's torch_dtype follows)",
    placeholder: 'DTYPE',
    defaultText: 'each as --model stores it',
  }),
  combination: flag({
    type: { choices: TASK_COMBINATIONS },
    help: "combine the deltas' weight changes: linear is task arithmetic (the weighted sum), the others PEFT's pruned merges",
    placeholder: 'TYPE',
    defaultText: 'none: each delta folded in on top of the last',
  }),
  weights: flag({
    type: 'text',
    accepts: 'comma-separated numbers, one per --delta',
    help: "each delta's weight in the combination",
    placeholder: 'W1,W2,...',
    defaultText: '1 each',
  }),
  // Text, read here: one message for every value outside (0, 1], "abc" included.
  density: flag({
    type: 'text',
    accepts: 'a number in (0, 1]',
    help: 'ties, dare_*, magnitude_prune: the fraction of each weight change kept',
    placeholder: 'D',
  }),
  'majority-sign-method': flag({
    type: { choices: ['total', 'frequency'] },
    help: "ties, dare_ties: elect each element's sign by the sum of the values or by the count of signs",
    placeholder: 'METHOD',
    defaultText: 'total',
  }),
  seed: flag({
    type: 'integer',
    help: "dare_*: seed of the random drop masks (deltatune's mulberry32)",
    placeholder: 'N',
    defaultText: '0',
  }),
  ...COMMON_FLAGS,
} as const;

type TorchDtype = 'float32' | 'bfloat16' | 'float16';
const STORED: Record<TorchDtype, SafetensorsDtype> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

const INDEX = 'model.safetensors.index.json';

// Copied as they are: what transformers and tokenizers read besides config.json and the weights.
const COPIED = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'chat_template.json',
  'added_tokens.json',
  'tokenizer.model',
  'vocab.txt',
  'vocab.json',
  'merges.txt',
];

export const mergeCommand = defineCommand({
  name: 'merge',
  summary: 'fold LoRA/BitFit deltas into a Hugging Face folder',
  about: `deltatune merge --model <HF folder> --delta DIR [--delta DIR]... --out <folder> [--dtype float32|bfloat16|float16]
                [--combination linear|ties|dare_linear|dare_ties|magnitude_prune --weights W1,W2,... --density D]
  Folds merge-able deltas (LoRA family, BitFit) into the weights and writes a Hugging Face folder
  (config.json, the weights in the input's layout: model.safetensors or the same shards and index,
  PyTorch layouts; generation config and tokenizer files copied) that transformers loads without PEFT.
  Each tensor keeps the dtype it has in --model (a bfloat16 model stays bfloat16) unless --dtype says.
  With --combination or --weights, each delta's change to the weights is measured on its own and the
  changes are combined as PEFT's merge types do (task arithmetic, TIES, DARE, magnitude pruning).`,
  flags: MERGE_FLAGS,
  run: (flags) => merge(flags),
});

async function merge(flags: Flags<typeof MERGE_FLAGS>): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.value('json');
  const modelArg = flags.required('model', 'the Hugging Face folder (or hub id) the delta was trained on');
  // A hub id is merged from its snapshot in the Hugging Face cache (downloaded if missing).
  const model = modelArg === USE_LITE ? modelArg : await resolveModel(modelArg, json);
  const deltaDirs = flags.value('delta');
  const out = flags.required('out', 'a folder for the merged model');
  if (model === USE_LITE)
    throw new DeltaTuneError(
      'use-lite is not a Hugging Face folder, so there is nothing to write a merged copy into',
      'apply the delta at load time instead: deltatune forward --model use-lite --delta DIR --merge',
    );
  if (deltaDirs.length === 0) throw new DeltaTuneError('deltatune merge needs at least one --delta', 'e.g. --delta runs/x/delta');
  const combine = combinationFlags(flags, deltaDirs.length);
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
  const claim = claimOutputDir(out, {
    kind: 'merge',
    replaces: ['merge'],
    overwrite: flags.value('overwrite'),
    settings: { model: modelArg, deltas: deltaDirs, ...(combine && { combination: combine.options, weights: combine.weights }) },
  });
  const dtype = flags.value('dtype');
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
  }
  if (combine) {
    if (deltas.length !== deltaDirs.length)
      throw new DeltaTuneError(
        `--combination and --weights take one delta per --delta, and ${deltaDirs.length} --delta folder(s) held ${deltas.length} deltas`,
        'pass each delta of a composition or run folder as its own --delta',
      );
    await mergeWeightDeltas(backbone, deltas, combine.weights, combine.options);
  } else for (const d of deltas) d.merge!();
  const stale = weightFiles(out);
  // An earlier merge here stops being a model until this one is complete (config.json comes last):
  // a kill half-way leaves no folder that loads with some shards old and some new. Only a merge's
  // own config.json: a folder deltatune did not write keeps its files until they are replaced.
  if (claim.previous?.kind === 'merge') rmSync(join(out, 'config.json'), { force: true });
  const written = await writeWeights(model, out, original, backbone, config.model_type as string, dtype && STORED[dtype]);
  // A previous merge's weights in another layout would shadow or mix with these (model.safetensors wins over an index).
  for (const file of stale) if (!written.files.includes(file)) rmSync(join(out, file), { force: true });
  for (const extra of COPIED) {
    if (existsSync(join(model, extra))) writeFileAtomic(join(out, extra), readFileSync(join(model, extra)));
  }
  // Last: the file that makes the folder a model.
  writeFileAtomic(join(out, 'config.json'), dtype ? withDtype(config, dtype) : readFileSync(join(model, 'config.json')));
  const shards = written.files.length - 1;
  output(
    json,
    {
      backend,
      model,
      merged: deltas.map((d) => ({ name: d.name, method: d.method })),
      ...(combine && { combination: combine.options, weights: combine.weights }),
      out,
      files: written.files,
      dtypes: written.dtypes,
    },
    () =>
      `merged ${deltas.map((d) => `${d.name} (${d.method})`).join(', ')}${combine ? ` (${describe(combine)})` : ''} into ${out}: ${
        shards === 0 ? written.files[0] : `${shards} shard${shards === 1 ? '' : 's'} + ${INDEX}`
      } (${written.dtypes.join('/')})`,
  );
  for (const d of deltas) d.detach();
  backbone.dispose();
}

interface Combine {
  readonly weights: number[];
  readonly options: MergeWeightDeltasOptions & { combination: TaskCombination };
}

/**
 * The combination flags, checked before anything is loaded; undefined when none is given (then the
 * deltas are folded in one after the other, as before these flags existed).
 */
function combinationFlags(flags: Flags<typeof MERGE_FLAGS>, deltaCount: number): Combine | undefined {
  const given = (['combination', 'weights', 'density', 'majority-sign-method', 'seed'] as const).filter((f) => flags.given(f));
  if (given.length === 0) return undefined;
  const combination = flags.value('combination') ?? 'linear';
  const example = `e.g. --combination ties --density 0.5${deltaCount > 1 ? ` --weights ${Array(deltaCount).fill(1).join(',')}` : ''}`;
  if (!flags.given('combination') && given.some((f) => f !== 'weights'))
    throw new DeltaTuneError(`--${given.find((f) => f !== 'weights')} needs --combination`, example);
  const weights = flags.given('weights') ? parseWeights(flags.value('weights')!, deltaCount) : Array<number>(deltaCount).fill(1);
  const densityText = flags.value('density');
  const density = densityText === undefined ? undefined : Number(densityText.trim() === '' ? NaN : densityText);
  const prunes = combination !== 'linear';
  if (density !== undefined && !prunes)
    throw new DeltaTuneError(
      '--density is for ties, dare_linear, dare_ties and magnitude_prune; linear keeps every value',
      'drop --density, or pick --combination ties',
    );
  if (prunes && density === undefined)
    throw new DeltaTuneError(
      `--combination ${combination} needs --density (the fraction of each weight change kept)`,
      `e.g. --combination ${combination} --density 0.5`,
    );
  if (density !== undefined && !(density > 0 && density <= 1))
    throw new DeltaTuneError(`--density must be a number in (0, 1], got "${densityText}"`, 'e.g. --density 0.5 (1 keeps every value)');
  const sign = flags.value('majority-sign-method');
  if (sign !== undefined && combination !== 'ties' && combination !== 'dare_ties')
    throw new DeltaTuneError(`--majority-sign-method is for ties and dare_ties, not ${combination}`, 'drop it, or pick --combination ties');
  const seed = flags.value('seed');
  if (seed !== undefined && combination !== 'dare_linear' && combination !== 'dare_ties')
    throw new DeltaTuneError(
      `--seed is for dare_linear and dare_ties (${combination} draws nothing at random)`,
      'drop --seed, or pick --combination dare_ties',
    );
  return {
    weights,
    options: {
      combination,
      ...(density !== undefined && { density }),
      ...(sign !== undefined && { majoritySignMethod: sign }),
      ...(seed !== undefined && { seed }),
    },
  };
}

function parseWeights(text: string, deltaCount: number): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const example = `e.g. --weights ${Array(deltaCount)
    .fill(deltaCount > 1 ? 0.5 : 1)
    .join(',')}`;
  const bad = parts.find((p) => p === '' || !Number.isFinite(Number(p)));
  if (bad !== undefined) throw new DeltaTuneError(`--weights must be comma-separated numbers, got "${text}"`, example);
  if (parts.length !== deltaCount)
    throw new DeltaTuneError(
      `--weights has ${parts.length} value${parts.length === 1 ? '' : 's'} for ${deltaCount} --delta`,
      `give one weight per --delta, in order: ${example}`,
    );
  return parts.map(Number);
}

function describe({ weights, options }: Combine): string {
  const extra = [
    options.density !== undefined && `density ${options.density}`,
    options.majoritySignMethod && `${options.majoritySignMethod} sign`,
    options.seed !== undefined && `seed ${options.seed}`,
  ].filter(Boolean);
  return [options.combination, `weights ${weights.join(',')}`, ...extra].join(', ');
}

/**
 * Writes every tensor of the original file(s), those the backbone holds merged, in the input's own
 * layout: one model.safetensors, or the same shards under the same names plus an index (so a
 * writer holds one shard at a time, and tools that expect the shard layout find it). Each tensor is
 * stored as the input stored it, or as `as` for floating-point ones. Tensors the input lacks (a
 * tied lm_head) are not added.
 */
async function writeWeights(
  model: string,
  out: string,
  original: ReadonlyMap<string, RawTensor>,
  backbone: Backbone,
  modelType: string,
  as: SafetensorsDtype | undefined,
): Promise<{ files: string[]; dtypes: SafetensorsDtype[] }> {
  const layout = inputLayout(model, original.keys());
  const toParameter = checkpointNameMap(modelType, original.keys());
  const dtypes: SafetensorsDtype[] = [];
  let totalSize = 0;
  for (const [file, names] of layout.files) {
    const tensors = new Map<string, TensorToWrite>();
    for (const name of names) {
      const raw = original.get(name)!;
      const writeAs = raw.dtype === 'float32' && as ? as : raw.storedAs;
      if (raw.dtype === 'float32') dtypes.push(writeAs);
      const key = toParameter(name);
      const ours = key === undefined ? undefined : backbone.parameters.get(key);
      if (key === undefined || !ours) {
        tensors.set(name, { dtype: raw.dtype, shape: raw.shape, data: raw.data, writeAs });
        continue;
      }
      // BERT Linear weights are held [in, out]; the file wants PyTorch's [out, in].
      const value = backbone.transposedParameters?.has(key) ? tf.transpose(ours) : ours;
      tensors.set(name, { dtype: 'float32', shape: raw.shape, data: (await value.data()) as Float32Array, writeAs });
      if (value !== ours) value.dispose();
    }
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    totalSize += bytes.byteLength - readSafetensorsHeader(bytes).dataStart;
    writeFileAtomic(join(out, file), bytes);
  }
  const files = [...layout.files.keys()];
  if (layout.index) {
    const weightMap = Object.fromEntries([...layout.files].flatMap(([file, names]) => names.map((n) => [n, file])).sort());
    const metadata = { ...(layout.index.metadata as object | undefined), total_size: totalSize };
    writeFileAtomic(join(out, INDEX), JSON.stringify({ ...layout.index, metadata, weight_map: weightMap }, null, 2) + '\n');
    files.push(INDEX);
  }
  return { files, dtypes: [...new Set(dtypes)] };
}

/** Which file each tensor is in: model.safetensors, or the shards model.safetensors.index.json names. */
function inputLayout(model: string, names: Iterable<string>): { files: Map<string, string[]>; index?: Record<string, unknown> } {
  const all = [...names];
  if (existsSync(join(model, 'model.safetensors'))) return { files: new Map([['model.safetensors', all]]) };
  // readModelTensors has read and checked the index and its shards already.
  const index = JSON.parse(readFileSync(join(model, INDEX), 'utf8')) as Record<string, unknown>;
  const weightMap = index.weight_map as Record<string, string>;
  const files = new Map<string, string[]>();
  for (const shard of new Set(Object.values(weightMap))) {
    // The shard names become paths under --out: keep them there.
    if (isAbsolute(shard) || normalize(shard).startsWith('..')) {
      throw new DeltaTuneError(
        `${join(model, INDEX)} names a shard outside the folder (${JSON.stringify(shard)})`,
        'use an index whose shards are files in the model folder',
      );
    }
    files.set(shard, []);
  }
  // A tensor a shard holds but the index does not list goes into the last shard (and into the new index).
  const last = [...files.keys()].pop()!;
  for (const name of all) files.get(weightMap[name] ?? last)!.push(name);
  return { files, index };
}

/** The weight files a folder holds now: model.safetensors, the index and the shards it names. */
function weightFiles(dir: string): string[] {
  const found = ['model.safetensors', INDEX].filter((f) => existsSync(join(dir, f)));
  try {
    const weightMap = (JSON.parse(readFileSync(join(dir, INDEX), 'utf8')) as { weight_map?: Record<string, unknown> }).weight_map;
    for (const shard of new Set(Object.values(weightMap ?? {}))) {
      if (typeof shard === 'string' && !isAbsolute(shard) && !normalize(shard).startsWith('..') && existsSync(join(dir, shard)))
        found.push(shard);
    }
  } catch {
    // No index, or not one we can read: only the fixed names above.
  }
  return found;
}

/** config.json saying the new dtype: torch_dtype, and `dtype` where newer transformers wrote that. */
function withDtype(config: Record<string, unknown>, dtype: TorchDtype): string {
  const updated: Record<string, unknown> = { ...config, torch_dtype: dtype };
  if ('dtype' in config) updated.dtype = dtype;
  return JSON.stringify(updated, null, 2) + '\n';
}
