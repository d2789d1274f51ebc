import { DeltaTuneError } from '@deltatune/core';
import { field, intField, positiveField } from './hf-config';

/** The decoders built on the Llama recipe (RoPE, RMSNorm, SwiGLU, grouped-query attention). */
export const LLAMA_FAMILY = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
export type LlamaFamily = (typeof LLAMA_FAMILY)[number];

export type RopeScaling =
  | { readonly type: 'default' }
  | { readonly type: 'linear'; readonly factor: number }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    };

export interface LlamaConfig {
  readonly modelType: LlamaFamily;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  readonly maxPositions: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  /** Biases on q, k and v (Qwen2 always; Llama with `attention_bias`), and on o with `attention_bias`. */
  readonly qkvBias: boolean;
  readonly outputBias: boolean;
  readonly mlpBias: boolean;
  /** Qwen3: RMSNorm over each query and key head before RoPE. */
  readonly qkNorm: boolean;
  readonly tieWordEmbeddings: boolean;
  /** Mistral's sliding window: longer sequences are refused (not implemented as a banded mask). */
  readonly slidingWindow?: number;
}

const SUPPORTED_ROPE = ['default', 'linear', 'llama3'];

function ropeScaling(hf: Record<string, unknown>): RopeScaling {
  // transformers 4.x: `rope_scaling`; 5.x: `rope_parameters` (which also holds rope_theta).
  const raw = (hf.rope_scaling ?? hf.rope_parameters ?? null) as Record<string, unknown> | null;
  if (raw === null) return { type: 'default' };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DeltaTuneError(
      `config.json: "rope_scaling" is ${JSON.stringify(raw)}, not an object`,
      'set it to null or {"rope_type": "llama3", ...}',
    );
  }
  const type = (raw.rope_type ?? raw.type ?? 'default') as string;
  if (!SUPPORTED_ROPE.includes(type)) {
    throw new DeltaTuneError(
      `config.json: rope_scaling type "${type}" is not supported`,
      `supported: ${SUPPORTED_ROPE.join(', ')}; a model that needs "${type}" scaling cannot be loaded yet`,
    );
  }
  if (type === 'default') return { type };
  const factor = positiveField(raw, 'factor');
  if (type === 'linear') return { type, factor };
  return {
    type: 'llama3',
    factor,
    lowFreqFactor: positiveField(raw, 'low_freq_factor'),
    highFreqFactor: positiveField(raw, 'high_freq_factor'),
    originalMaxPositions: intField(raw, 'original_max_position_embeddings'),
  };
}

export function llamaConfig(hf: Record<string, unknown>): LlamaConfig {
  const modelType = hf.model_type as LlamaFamily;
  const hidden = intField(hf, 'hidden_size');
  const heads = intField(hf, 'num_attention_heads');
  const kvHeads = intField(hf, 'num_key_value_heads', heads);
  if (heads % kvHeads !== 0) {
    throw new DeltaTuneError(
      `config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`,
      'check that config.json belongs to these weights',
    );
  }
  const headDimField = hf.head_dim === null ? undefined : (hf.head_dim as number | undefined);
  if (headDimField === undefined && hidden % heads !== 0) {
    throw new DeltaTuneError(`config.json: hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`, 'set head_dim');
  }
  const act = field<string>(hf, 'hidden_act', 'silu');
  if (act !== 'silu' && act !== 'swish') {
    throw new DeltaTuneError(`config.json: hidden_act "${act}" is not supported for ${modelType}`, 'Llama-family models use silu');
  }
  const attentionBias = field<boolean>(hf, 'attention_bias', false) === true;
  const parameters = (hf.rope_parameters ?? {}) as Record<string, unknown>;
  const window = hf.sliding_window;
  const useWindow = modelType === 'mistral' ? window !== null && window !== undefined : hf.use_sliding_window === true;
  return {
    modelType,
    vocabSize: intField(hf, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: intField(hf, 'num_hidden_layers'),
    numHeads: heads,
    numKeyValueHeads: kvHeads,
    headDim: headDimField === undefined ? hidden / heads : intField(hf, 'head_dim'),
    intermediateSize: intField(hf, 'intermediate_size'),
    maxPositions: intField(hf, 'max_position_embeddings', 4096),
    rmsNormEps: positiveField(hf, 'rms_norm_eps', 1e-6),
    ropeTheta: positiveField(hf.rope_theta === undefined ? parameters : hf, 'rope_theta', 10000),
    ropeScaling: ropeScaling(hf),
    qkvBias: modelType === 'qwen2' || attentionBias,
    outputBias: attentionBias && modelType !== 'qwen2',
    mlpBias: field<boolean>(hf, 'mlp_bias', false) === true,
    qkNorm: modelType === 'qwen3',
    tieWordEmbeddings: field<boolean>(hf, 'tie_word_embeddings', modelType !== 'llama' && modelType !== 'mistral') === true,
    ...(useWindow ? { slidingWindow: intField(hf, 'sliding_window') } : {}),
  };
}

/** RoPE's inverse frequencies `[headDim / 2]`, with the config's scaling (transformers' `_compute_*_parameters`). */
export function ropeInverseFrequencies(c: Pick<LlamaConfig, 'ropeTheta' | 'headDim' | 'ropeScaling'>): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / c.ropeTheta ** ((2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (s.type === 'linear') for (let i = 0; i < half; i++) inv[i] /= s.factor;
  if (s.type === 'llama3') {
    const lowWavelength = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelength = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelength = (2 * Math.PI) / inv[i];
      const scaled = wavelength > lowWavelength ? inv[i] / s.factor : inv[i];
      if (wavelength < highWavelength || wavelength > lowWavelength) inv[i] = scaled;
      else {
        const smooth = (s.originalMaxPositions / wavelength - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = ((1 - smooth) * scaled) / s.factor + smooth * scaled;
      }
    }
  }
  return Float32Array.from(inv);
}
