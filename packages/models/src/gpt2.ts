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
import { checkPositions } from './bert';
import { activationField, checkHeads, intField, positiveField } from './hf-config';
import { geluTanh, linearSite, multiHeadAttention, normSite, runLayerNorm } from './layers';
import type { WeightStore } from './weights';

export interface Gpt2Config {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly innerSize: number;
  readonly maxPositions: number;
  readonly layerNormEps: number;
}

export function gpt2Config(hf: Record<string, unknown>): Gpt2Config {
  const hidden = intField(hf, 'n_embd');
  const c = {
    vocabSize: intField(hf, 'vocab_size'),
    hiddenSize: hidden,
    numLayers: intField(hf, 'n_layer'),
    numHeads: intField(hf, 'n_head'),
    innerSize: intField(hf, 'n_inner', 4 * hidden),
    maxPositions: intField(hf, 'n_positions'),
    layerNormEps: positiveField(hf, 'layer_norm_epsilon', 1e-5),
  };
  checkHeads(c.hiddenSize, c.numHeads, ['n_embd', 'n_head']);
  // GPT-2's blocks compute the tanh FUSED_KERNELS.gelu, so only its forms are accepted.
  activationField(hf, 'activation_function', 'gelu_new', ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast']);
  return c;
}

interface Gpt2Block {
  norm1: NormSite;
  attn: LinearSite;
  attention: AttentionSite;
  proj: LinearSite;
  attnSublayer: SublayerSite;
  norm2: NormSite;
  fc: LinearSite;
  mlpProj: LinearSite;
  mlpSublayer: SublayerSite;
}

/**
 * `GPT2LMHeadModel`: pre-norm causal blocks, final layer norm, LM head tied to the token
 * embeddings. GPT-2's Conv1D weights are already `[in, out]`. `pooled` is the hidden state of
 * each row's last real token (what GPT2ForSequenceClassification reads).
 */
export class Gpt2Backbone implements Backbone {
  readonly architecture = 'gpt2';
  readonly hooks = new HookRegistry();
  readonly sites: Site[] = [];
  readonly parameters: ReadonlyMap<string, Variable>;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  private readonly embeddingsSite: EmbeddingsSite;
  private readonly positions: Variable;
  private readonly blocks: Gpt2Block[] = [];
  private readonly finalNorm: NormSite;

  constructor(
    readonly config: Gpt2Config,
    w: WeightStore,
  ) {
    const c = config;
    const h = c.hiddenSize;
    this.hiddenSize = h;
    this.vocabSize = c.vocabSize;
    this.maxPositions = c.maxPositions;
    const norm = (name: string, layer?: number): NormSite =>
      normSite(name, w.take(`${name}.weight`, [h]), w.take(`${name}.bias`, [h]), layer);
    const conv1d = (name: string, inF: number, outF: number, layer: number) =>
      linearSite(name, w.take(`${name}.weight`, [inF, outF]), w.take(`${name}.bias`, [outF]), layer);
    const table = w.take('transformer.wte.weight', [c.vocabSize, h]);
    this.embeddingsSite = { kind: 'embeddings', name: 'transformer.wte', hidden: h, table };
    this.positions = w.take('transformer.wpe.weight', [c.maxPositions, h]);
    this.sites.push(this.embeddingsSite);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      const block: Gpt2Block = {
        norm1: norm(`${p}.ln_1`, i),
        attn: conv1d(`${p}.attn.c_attn`, h, 3 * h, i),
        attention: { kind: 'attention', name: `${p}.attn.attention`, layer: i, numHeads: c.numHeads, headDim: h / c.numHeads },
        proj: conv1d(`${p}.attn.c_proj`, h, h, i),
        attnSublayer: { kind: 'sublayer', name: `${p}.attn`, layer: i, position: 'attention', inFeatures: h, hidden: h },
        norm2: norm(`${p}.ln_2`, i),
        fc: conv1d(`${p}.mlp.c_fc`, h, c.innerSize, i),
        mlpProj: conv1d(`${p}.mlp.c_proj`, c.innerSize, h, i),
        mlpSublayer: { kind: 'sublayer', name: `${p}.mlp`, layer: i, position: 'feedforward', inFeatures: h, hidden: h },
      };
      this.blocks.push(block);
      this.sites.push(
        block.norm1,
        block.attention,
        block.attn,
        block.proj,
        block.attnSublayer,
        block.norm2,
        block.fc,
        block.mlpProj,
        block.mlpSublayer,
      );
    }
    this.finalNorm = norm('transformer.ln_f');
    this.sites.push(this.finalNorm);
    this.parameters = w.parameters;
  }

  forward(inputs: BackboneInputs, options: { training?: boolean } = {}): BackboneOutputs {
    const ctx: PassContext = { training: options.training ?? false };
    const c = this.config;
    return tf.tidy(() => {
      const [b, s] = inputs.inputIds.shape as number[];
      const words = tf.gather(this.embeddingsSite.table, tf.cast(inputs.inputIds, 'int32'));
      const { embeds, prepended } = runEmbeddings(this.hooks, this.embeddingsSite, words, ctx);
      const extras = this.blocks.map((blk) => runAttention(this.hooks, blk.attention, b, ctx));
      const past = extras[0]?.length ?? 0;
      const total = prepended + s;
      checkPositions('gpt2', past + total, this.maxPositions, s);
      let mask = tf.cast(inputs.attentionMask, 'float32');
      if (prepended > 0) mask = tf.concat([tf.ones([b, prepended]), mask], 1);
      // Positions start at each row's first real token, so a left-padded row (batched generation)
      // gets the positions it would have alone; right-padded rows keep 0, 1, 2... throughout.
      // Counted on the input's own mask: a prompt-tuning prompt (always attended) goes in front.
      const real = tf.cast(inputs.attentionMask, 'float32');
      const leadingPads = tf.sum(tf.cast(tf.equal(tf.cumsum(real, 1), 0), 'float32'), 1, true);
      const index = tf.range(0, total, 1, 'float32');
      const shifted = tf.add(tf.maximum(tf.sub(index, tf.add(leadingPads, prepended)), 0), prepended);
      const positionIds = tf.cast(tf.add(tf.where(tf.less(index, prepended), tf.broadcastTo(index, [b, total]), shifted), past), 'int32');
      let hidden: Tensor = tf.add(embeds, tf.gather(this.positions, positionIds));
      this.blocks.forEach((blk, i) => {
        // A scope per layer frees its intermediates as it ends (see BertBackbone.forward).
        hidden = tf.tidy(() => {
          const x = runLayerNorm(this.hooks, blk.norm1, hidden, c.layerNormEps, ctx);
          const [q, k, v] = tf.split(runLinear(this.hooks, blk.attn, x, ctx), 3, -1);
          const context = multiHeadAttention({
            query: q,
            key: k,
            value: v,
            numHeads: c.numHeads,
            scale: 1 / Math.sqrt(c.hiddenSize / c.numHeads),
            keyMask: mask,
            causal: true,
            extra: extras[i],
          });
          let attended = runLinear(this.hooks, blk.proj, context, ctx);
          attended = runSublayer(this.hooks, blk.attnSublayer, x, attended, ctx);
          const afterAttention = tf.add(hidden, attended);
          const y = runLayerNorm(this.hooks, blk.norm2, afterAttention, c.layerNormEps, ctx);
          let mlp = runLinear(this.hooks, blk.mlpProj, geluTanh(runLinear(this.hooks, blk.fc, y, ctx)), ctx);
          mlp = runSublayer(this.hooks, blk.mlpSublayer, y, mlp, ctx);
          return tf.add(afterAttention, mlp);
        });
      });
      hidden = runLayerNorm(this.hooks, this.finalNorm, hidden, c.layerNormEps, ctx);
      const logits = tf.reshape(tf.matMul(tf.reshape(hidden, [b * total, c.hiddenSize]), this.embeddingsSite.table, false, true), [
        b,
        total,
        c.vocabSize,
      ]);
      // Last real token of each row: prepended positions + (real tokens - 1).
      const lengths = tf.sum(tf.cast(inputs.attentionMask, 'int32'), 1);
      const last = tf.add(lengths, tf.scalar(prepended - 1, 'int32'));
      const rowStarts = tf.range(0, b * total, total, 'int32');
      const pooled = tf.gather(tf.reshape(hidden, [b * total, c.hiddenSize]), tf.add(rowStarts, last));
      return { lastHiddenState: hidden, logits, pooled, prependedPositions: prepended };
    });
  }

  dispose(): void {
    for (const v of this.parameters.values()) v.dispose();
  }
}
