import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  DeltaTuneError,
  HookRegistry,
  runAttention,
  runEmbeddings,
  runLinear,
  runSublayer,
  type AttentionSite,
  type Backbone,
  type BackboneInputs,
  type BackboneOutputs,
  type EmbeddingsSite,
  type LinearSite,
  type NormSite,
  type PassContext,
  type Site,
  type SublayerSite,
} from '@deltatune/core';
import { activationField, checkHeads, intField, positiveField } from './hf-config';
import { geluErf, geluTanh, linearSite, multiHeadAttention, normSite, runLayerNorm } from './layers';
import type { WeightStore } from './weights';

export interface BertConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly intermediateSize: number;
  readonly maxPositions: number;
  readonly typeVocabSize: number;
  readonly layerNormEps: number;
  readonly hiddenAct: string;
  readonly padTokenId: number;
}

export function bertConfig(hf: Record<string, unknown>): BertConfig {
  const c = {
    vocabSize: intField(hf, 'vocab_size'),
    hiddenSize: intField(hf, 'hidden_size'),
    numLayers: intField(hf, 'num_hidden_layers'),
    numHeads: intField(hf, 'num_attention_heads'),
    intermediateSize: intField(hf, 'intermediate_size'),
    maxPositions: intField(hf, 'max_position_embeddings'),
    typeVocabSize: intField(hf, 'type_vocab_size', 2),
    layerNormEps: positiveField(hf, 'layer_norm_eps', 1e-12),
    hiddenAct: activationField(hf, 'hidden_act', 'gelu'),
    padTokenId: intField(hf, 'pad_token_id', 0, 0),
  };
  checkHeads(c.hiddenSize, c.numHeads, ['hidden_size', 'num_attention_heads']);
  return c;
}

interface BertLayer {
  query: LinearSite;
  key: LinearSite;
  value: LinearSite;
  attention: AttentionSite;
  attentionOutput: LinearSite;
  attentionSublayer: SublayerSite;
  attentionNorm: NormSite;
  intermediate: LinearSite;
  output: LinearSite;
  outputSublayer: SublayerSite;
  outputNorm: NormSite;
}

/**
 * `BertModel` (and RoBERTa, which differs in its position ids), as in transformers: embeddings,
 * post-norm encoder layers, tanh pooler over the first position.
 */
export class BertBackbone implements Backbone {
  readonly hooks = new HookRegistry();
  readonly sites: Site[] = [];
  readonly parameters: ReadonlyMap<string, Variable>;
  readonly transposedParameters: ReadonlySet<string>;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly typeVocabSize: number;
  private readonly embeddingsSite: EmbeddingsSite;
  private readonly positions: Variable;
  private readonly tokenTypes: Variable;
  private warnedTokenTypes = false;
  private readonly embeddingsNorm: NormSite;
  private readonly layers: BertLayer[] = [];
  private readonly pooler: LinearSite;
  private readonly act: (x: Tensor) => Tensor;

  constructor(
    readonly architecture: 'bert' | 'roberta',
    readonly config: BertConfig,
    w: WeightStore,
  ) {
    const c = config;
    const h = c.hiddenSize;
    this.hiddenSize = h;
    this.vocabSize = c.vocabSize;
    // RoBERTa counts positions from padding_idx + 1, so two rows of its table are never used.
    this.maxPositions = architecture === 'roberta' ? c.maxPositions - c.padTokenId - 1 : c.maxPositions;
    this.typeVocabSize = c.typeVocabSize;
    this.act = c.hiddenAct === 'gelu' ? geluErf : geluTanh;
    const norm = (name: string, layer?: number): NormSite =>
      normSite(name, w.take(`${name}.weight`, [h]), w.take(`${name}.bias`, [h]), layer);
    const linear = (name: string, inF: number, outF: number, layer?: number) =>
      linearSite(name, w.take(`${name}.weight`, [outF, inF], { transpose: true }), w.take(`${name}.bias`, [outF]), layer);

    const table = w.take('embeddings.word_embeddings.weight', [c.vocabSize, h]);
    this.embeddingsSite = { kind: 'embeddings', name: 'embeddings.word_embeddings', hidden: h, table };
    this.positions = w.take('embeddings.position_embeddings.weight', [c.maxPositions, h]);
    this.tokenTypes = w.take('embeddings.token_type_embeddings.weight', [c.typeVocabSize, h]);
    this.embeddingsNorm = norm('embeddings.LayerNorm');
    this.sites.push(this.embeddingsSite, this.embeddingsNorm);

    for (let i = 0; i < c.numLayers; i++) {
      const p = `encoder.layer.${i}`;
      const layer: BertLayer = {
        query: linear(`${p}.attention.self.query`, h, h, i),
        key: linear(`${p}.attention.self.key`, h, h, i),
        value: linear(`${p}.attention.self.value`, h, h, i),
        attention: { kind: 'attention', name: `${p}.attention.self`, layer: i, numHeads: c.numHeads, headDim: h / c.numHeads },
        attentionOutput: linear(`${p}.attention.output.dense`, h, h, i),
        attentionSublayer: { kind: 'sublayer', name: `${p}.attention.output`, layer: i, position: 'attention', inFeatures: h, hidden: h },
        attentionNorm: norm(`${p}.attention.output.LayerNorm`, i),
        intermediate: linear(`${p}.intermediate.dense`, h, c.intermediateSize, i),
        output: linear(`${p}.output.dense`, c.intermediateSize, h, i),
        outputSublayer: { kind: 'sublayer', name: `${p}.output`, layer: i, position: 'feedforward', inFeatures: h, hidden: h },
        outputNorm: norm(`${p}.output.LayerNorm`, i),
      };
      this.layers.push(layer);
      this.sites.push(
        layer.attention,
        layer.query,
        layer.key,
        layer.value,
        layer.attentionOutput,
        layer.attentionSublayer,
        layer.attentionNorm,
        layer.intermediate,
        layer.output,
        layer.outputSublayer,
        layer.outputNorm,
      );
    }
    this.pooler = linear('pooler.dense', h, h);
    this.sites.push(this.pooler);
    this.parameters = w.parameters;
    this.transposedParameters = w.transposed;
  }

  forward(inputs: BackboneInputs, options: { training?: boolean } = {}): BackboneOutputs {
    const ctx: PassContext = { training: options.training ?? false };
    const c = this.config;
    return tf.tidy(() => {
      const [b, s] = inputs.inputIds.shape as number[];
      const words = tf.gather(this.embeddingsSite.table, tf.cast(inputs.inputIds, 'int32'));
      const { embeds, prepended } = runEmbeddings(this.hooks, this.embeddingsSite, words, ctx);
      const extras = this.layers.map((l) => runAttention(this.hooks, l.attention, b, ctx));
      // Prefix tuning hands keys/values as past states, so positions continue after them (as transformers does).
      const past = extras[0]?.length ?? 0;
      const total = prepended + s;
      checkPositions(this.architecture, past + total, this.maxPositions, s);
      let mask = tf.cast(inputs.attentionMask, 'float32');
      if (prepended > 0) mask = tf.concat([tf.ones([b, prepended]), mask], 1);
      const positionIds = this.positionIds(inputs, prepended, past, total);
      // PEFT drops token_type_ids while prompt or prefix tuning is active (with a warning); doing the
      // same keeps a PEFT prompt/prefix adapter giving PEFT's outputs.
      const promptLearning = prepended > 0 || past > 0;
      if (promptLearning && inputs.tokenTypeIds && !this.warnedTokenTypes) {
        this.warnedTokenTypes = true;
        console.warn('warning: token_type_ids are ignored while prompt or prefix tuning is active, as PEFT does');
      }
      let types = inputs.tokenTypeIds && !promptLearning ? tf.cast(inputs.tokenTypeIds, 'int32') : tf.zeros([b, s], 'int32');
      if (prepended > 0) types = tf.concat([tf.zeros([b, prepended], 'int32'), types], 1);
      let hidden = tf.add(tf.add(embeds, tf.gather(this.positions, positionIds)), tf.gather(this.tokenTypes, types));
      hidden = runLayerNorm(this.hooks, this.embeddingsNorm, hidden, c.layerNormEps, ctx);

      this.layers.forEach((l, i) => {
        // A scope per layer: tfjs keeps what the backward pass saves and frees the rest of the
        // layer's intermediates here, not at the end of the whole forward pass (inference of a
        // 4-layer BERT at batch 4 x 128: 276 -> 83 MiB above the weights; ~5% in a training step).
        hidden = tf.tidy(() => {
          const context = multiHeadAttention({
            query: runLinear(this.hooks, l.query, hidden, ctx),
            key: runLinear(this.hooks, l.key, hidden, ctx),
            value: runLinear(this.hooks, l.value, hidden, ctx),
            numHeads: c.numHeads,
            scale: 1 / Math.sqrt(c.hiddenSize / c.numHeads),
            keyMask: mask,
            causal: false,
            extra: extras[i],
          });
          let attended = runLinear(this.hooks, l.attentionOutput, context, ctx);
          attended = runSublayer(this.hooks, l.attentionSublayer, hidden, attended, ctx);
          const afterAttention = runLayerNorm(this.hooks, l.attentionNorm, attended, c.layerNormEps, ctx, hidden);
          const inner = this.act(runLinear(this.hooks, l.intermediate, afterAttention, ctx));
          let out = runLinear(this.hooks, l.output, inner, ctx);
          out = runSublayer(this.hooks, l.outputSublayer, afterAttention, out, ctx);
          return runLayerNorm(this.hooks, l.outputNorm, out, c.layerNormEps, ctx, afterAttention);
        });
      });

      const first = tf.reshape(tf.slice(hidden, [0, 0, 0], [b, 1, c.hiddenSize]), [b, c.hiddenSize]);
      const pooled = tf.tanh(runLinear(this.hooks, this.pooler, first, ctx));
      return { lastHiddenState: hidden, pooled, prependedPositions: prepended };
    });
  }

  /** BERT counts positions from 0 (after any prefix); RoBERTa from pad+1, skipping padding. */
  private positionIds(inputs: BackboneInputs, prepended: number, past: number, total: number): Tensor {
    const b = inputs.inputIds.shape[0] as number;
    if (this.architecture === 'bert') {
      return tf.tile(tf.reshape(tf.range(past, past + total, 1, 'int32'), [1, total]), [b, 1]);
    }
    const pad = this.config.padTokenId;
    const real = tf.cast(tf.notEqual(inputs.inputIds, pad), 'int32');
    const int = (v: number) => tf.scalar(v, 'int32');
    const counted = tf.add(tf.mul(tf.add(tf.cumsum(real, 1), int(prepended + past)), real), int(pad));
    if (prepended === 0) return counted;
    const front = tf.tile(tf.reshape(tf.range(pad + 1 + past, pad + 1 + past + prepended, 1, 'int32'), [1, prepended]), [b, 1]);
    return tf.concat([front, counted], 1);
  }

  dispose(): void {
    for (const v of this.parameters.values()) v.dispose();
  }
}

/** A sequence longer than the position table fails inside tfjs's gather with a message about indices: say it plainly. */
export function checkPositions(architecture: string, needed: number, available: number, tokens: number): void {
  if (needed <= available) return;
  const virtual = needed - tokens;
  throw new DeltaTuneError(
    `${tokens} tokens${
      virtual ? ` plus ${virtual} virtual tokens of prompt/prefix tuning` : ''
    } do not fit this ${architecture} model's ${available} positions`,
    `truncate the input to at most ${available - virtual} tokens (--max-length ${available - virtual})`,
  );
}
