import { createRng, normal, type RawTensor, type Rng } from '@deltatune/core';
import { BertBackbone, type BertConfig } from './bert';
import { LlamaBackbone } from './llama';
import { llamaConfig } from './llama-config';
import { WeightStore } from './weights';

/** A float32 tensor of `shape`: normal draws of a standard deviation, or one value throughout. */
function randomTensor(rng: Rng, shape: number[], fill: number | { std: number }): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  let data: Float32Array;
  if (typeof fill === 'number') data = new Float32Array(n).fill(fill);
  else {
    const t = normal(rng, [n], fill.std);
    data = Float32Array.from(t.dataSync());
    t.dispose();
  }
  return { dtype: 'float32', shape, data, storedAs: 'F32' };
}

/** BERT-base's shape (bert-base-uncased), for benchmarks. */
export const BERT_BASE: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  intermediateSize: 3072,
  maxPositions: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: 'gelu',
  padTokenId: 0,
};

/**
 * A BERT with random weights (normal, std 0.02, layer norms at 1/0), in the file layout the
 * loader expects: for benchmarks, where the numbers do not matter and the shapes do.
 */
export function randomBert(config: BertConfig, seed = 0): BertBackbone {
  const rng = createRng(seed);
  const tensors = new Map<string, RawTensor>();
  const put = (name: string, shape: number[], fill?: number) => tensors.set(name, randomTensor(rng, shape, fill ?? { std: 0.02 }));
  const h = config.hiddenSize;
  const linear = (name: string, inF: number, outF: number) => {
    put(`${name}.weight`, [outF, inF]);
    put(`${name}.bias`, [outF], 0);
  };
  const norm = (name: string) => {
    put(`${name}.weight`, [h], 1);
    put(`${name}.bias`, [h], 0);
  };
  put('embeddings.word_embeddings.weight', [config.vocabSize, h]);
  put('embeddings.position_embeddings.weight', [config.maxPositions, h]);
  put('embeddings.token_type_embeddings.weight', [config.typeVocabSize, h]);
  norm('embeddings.LayerNorm');
  for (let i = 0; i < config.numLayers; i++) {
    const p = `encoder.layer.${i}`;
    for (const m of ['query', 'key', 'value']) linear(`${p}.attention.self.${m}`, h, h);
    linear(`${p}.attention.output.dense`, h, h);
    norm(`${p}.attention.output.LayerNorm`);
    linear(`${p}.intermediate.dense`, h, config.intermediateSize);
    linear(`${p}.output.dense`, config.intermediateSize, h);
    norm(`${p}.output.LayerNorm`);
  }
  linear('pooler.dense', h, h);
  return new BertBackbone('bert', config, new WeightStore(tensors, `random BERT (seed ${seed})`));
}

/** SmolLM2-135M's config.json (HuggingFaceTB/SmolLM2-135M): the shape of the generation benchmark. */
export const SMOLLM2_135M_CONFIG = {
  model_type: 'llama',
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  tie_word_embeddings: true,
  hidden_act: 'silu',
  bos_token_id: 0,
  eos_token_id: 0,
} as const;

/**
 * How random weights are drawn: transformers' std 0.02 everywhere by default. A tiny model
 * (hidden 32) learns better from `linearStd: 'fan-in'` (1/sqrt(in), activations keep their scale)
 * and a wider embedding table, whose logits then span more than a few hundredths.
 */
export interface RandomLlamaInit {
  readonly linearStd?: number | 'fan-in';
  readonly embeddingStd?: number;
}

/**
 * The tensors of a Llama-family model with random weights (normal, std 0.02; norms at 1), named
 * and shaped as a Hugging Face checkpoint of `config` holds them: for benchmarks and for tests that
 * need a model of a given shape (a real tokenizer's vocabulary) rather than trained numbers.
 */
export function randomLlamaTensors(config: Record<string, unknown>, seed = 0, init: RandomLlamaInit = {}): Map<string, RawTensor> {
  const c = llamaConfig(config);
  const rng = createRng(seed);
  const tensors = new Map<string, RawTensor>();
  const stdOf = (shape: number[]) =>
    shape[0] === c.vocabSize
      ? (init.embeddingStd ?? 0.02)
      : init.linearStd === 'fan-in'
        ? 1 / Math.sqrt(shape[1])
        : (init.linearStd ?? 0.02);
  const put = (name: string, shape: number[], fill?: number) => tensors.set(name, randomTensor(rng, shape, fill ?? { std: stdOf(shape) }));
  const h = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const linear = (name: string, inF: number, outF: number, bias: boolean) => {
    put(`${name}.weight`, [outF, inF]);
    if (bias) put(`${name}.bias`, [outF], 0);
  };
  put('model.embed_tokens.weight', [c.vocabSize, h]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    put(`${p}.input_layernorm.weight`, [h], 1);
    linear(`${p}.self_attn.q_proj`, h, q, c.qkvBias);
    linear(`${p}.self_attn.k_proj`, h, kv, c.qkvBias);
    linear(`${p}.self_attn.v_proj`, h, kv, c.qkvBias);
    linear(`${p}.self_attn.o_proj`, q, h, c.outputBias);
    if (c.qkNorm) {
      put(`${p}.self_attn.q_norm.weight`, [c.headDim], 1);
      put(`${p}.self_attn.k_norm.weight`, [c.headDim], 1);
    }
    put(`${p}.post_attention_layernorm.weight`, [h], 1);
    linear(`${p}.mlp.gate_proj`, h, c.intermediateSize, c.mlpBias);
    linear(`${p}.mlp.up_proj`, h, c.intermediateSize, c.mlpBias);
    linear(`${p}.mlp.down_proj`, c.intermediateSize, h, c.mlpBias);
  }
  put('model.norm.weight', [h], 1);
  if (!c.tieWordEmbeddings) put('lm_head.weight', [c.vocabSize, h]);
  return tensors;
}

/** A Llama-family backbone of `config` (a Hugging Face config.json) with random weights. */
export function randomLlama(config: Record<string, unknown>, seed = 0): LlamaBackbone {
  return new LlamaBackbone(
    llamaConfig(config),
    new WeightStore(randomLlamaTensors(config, seed), `random ${String(config.model_type)} (seed ${seed})`),
  );
}
