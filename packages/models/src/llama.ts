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
  type PassContext,
  type Site,
  type SublayerSite,
} from '@deltatune/core';
import { checkPositions } from './bert';
import { linearSite } from './layers';
import { ropeInverseFrequencies, type LlamaConfig } from './llama-config';
import { KeyValueCache } from './generation/kv-cache';
import type { WeightStore } from './weights';

interface LlamaBlock {
  inputNorm: Variable;
  q: LinearSite;
  k: LinearSite;
  v: LinearSite;
  o: LinearSite;
  qNorm?: Variable;
  kNorm?: Variable;
  attention: AttentionSite;
  attnSublayer: SublayerSite;
  postNorm: Variable;
  gate: LinearSite;
  up: LinearSite;
  down: LinearSite;
  mlpSublayer: SublayerSite;
}

/** RMSNorm over the last axis: `w * x / sqrt(mean(x^2) + eps)`, in float32 (as transformers computes it). */
function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  return tf.tidy(() => tf.mul(weight, tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)))));
}

/** `[..., d]` -> `[-x2, x1]`: the rotate-half form of RoPE transformers uses. */
function rotateHalf(x: Tensor): Tensor {
  const half = (x.shape[x.rank - 1] as number) / 2;
  const [x1, x2] = tf.split(x, [half, half], -1);
  return tf.concat([tf.neg(x2), x1], -1);
}

/**
 * The Llama recipe as transformers' LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and
 * Qwen3ForCausalLM compute it: pre-RMSNorm blocks, rotate-half RoPE (default, linear or Llama 3
 * scaling), grouped-query attention, SwiGLU MLP, final RMSNorm, tied or separate LM head; Qwen2's
 * q/k/v biases and Qwen3's per-head q/k norms. Hook sites carry Hugging Face names
 * (`model.layers.0.self_attn.q_proj`), so PEFT's target_modules work unchanged. `pooled` is each
 * row's last real token (as a sequence-classification head reads it).
 */
export class LlamaBackbone implements Backbone {
  readonly architecture: string;
  readonly hooks = new HookRegistry();
  readonly sites: Site[] = [];
  readonly parameters: ReadonlyMap<string, Variable>;
  readonly transposedParameters: ReadonlySet<string>;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  private readonly embeddingsSite: EmbeddingsSite;
  private readonly blocks: LlamaBlock[] = [];
  private readonly finalNorm: Variable;
  /** `[vocab, hidden]`: the LM head as stored (the embedding table when tied). */
  private readonly head: Variable;
  private readonly inverseFrequencies: Float32Array;
  private headCopy: { of: object; tensor: Tensor } | undefined;

  constructor(
    readonly config: LlamaConfig,
    w: WeightStore,
  ) {
    const c = config;
    this.architecture = c.modelType;
    const h = c.hiddenSize;
    const qWidth = c.numHeads * c.headDim;
    const kvWidth = c.numKeyValueHeads * c.headDim;
    this.hiddenSize = h;
    this.vocabSize = c.vocabSize;
    this.maxPositions = c.maxPositions;
    this.inverseFrequencies = ropeInverseFrequencies(c);
    const linear = (name: string, inF: number, outF: number, bias: boolean, layer: number) =>
      linearSite(
        name,
        w.take(`${name}.weight`, [outF, inF], { transpose: true }),
        bias ? w.take(`${name}.bias`, [outF]) : undefined,
        layer,
      );
    const table = w.take('model.embed_tokens.weight', [c.vocabSize, h]);
    this.embeddingsSite = { kind: 'embeddings', name: 'model.embed_tokens', hidden: h, table };
    this.sites.push(this.embeddingsSite);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      const block: LlamaBlock = {
        inputNorm: w.take(`${p}.input_layernorm.weight`, [h]),
        q: linear(`${p}.self_attn.q_proj`, h, qWidth, c.qkvBias, i),
        k: linear(`${p}.self_attn.k_proj`, h, kvWidth, c.qkvBias, i),
        v: linear(`${p}.self_attn.v_proj`, h, kvWidth, c.qkvBias, i),
        o: linear(`${p}.self_attn.o_proj`, qWidth, h, c.outputBias, i),
        ...(c.qkNorm
          ? { qNorm: w.take(`${p}.self_attn.q_norm.weight`, [c.headDim]), kNorm: w.take(`${p}.self_attn.k_norm.weight`, [c.headDim]) }
          : {}),
        // Prefix tuning's keys and values are per key-value head: each group of query heads reads them.
        attention: { kind: 'attention', name: `${p}.self_attn.attention`, layer: i, numHeads: c.numKeyValueHeads, headDim: c.headDim },
        attnSublayer: { kind: 'sublayer', name: `${p}.self_attn`, layer: i, position: 'attention', inFeatures: h, hidden: h },
        postNorm: w.take(`${p}.post_attention_layernorm.weight`, [h]),
        gate: linear(`${p}.mlp.gate_proj`, h, c.intermediateSize, c.mlpBias, i),
        up: linear(`${p}.mlp.up_proj`, h, c.intermediateSize, c.mlpBias, i),
        down: linear(`${p}.mlp.down_proj`, c.intermediateSize, h, c.mlpBias, i),
        mlpSublayer: { kind: 'sublayer', name: `${p}.mlp`, layer: i, position: 'feedforward', inFeatures: h, hidden: h },
      };
      this.blocks.push(block);
      this.sites.push(
        block.attention,
        block.q,
        block.k,
        block.v,
        block.o,
        block.attnSublayer,
        block.gate,
        block.up,
        block.down,
        block.mlpSublayer,
      );
    }
    this.finalNorm = w.take('model.norm.weight', [h]);
    this.head = c.tieWordEmbeddings ? table : w.take('lm_head.weight', [c.vocabSize, h]);
    this.parameters = w.parameters;
    this.transposedParameters = w.transposed;
  }

  /** cos and sin `[batch, positions, 1, headDim]` for each row's RoPE positions `[batch, positions]`. */
  private rope(positions: Tensor): { cos: Tensor; sin: Tensor } {
    const [b, count] = positions.shape as number[];
    const half = this.inverseFrequencies.length;
    const freqs = tf.mul(tf.reshape(positions, [b, count, 1]), tf.tensor3d(this.inverseFrequencies, [1, 1, half]));
    const angles = tf.reshape(tf.concat([freqs, freqs], 2), [b, count, 1, 2 * half]);
    return { cos: tf.cos(angles), sin: tf.sin(angles) };
  }

  /** An empty key/value cache for incremental decoding of `batchSize` rows (see `forward`'s `cache`). */
  createCache(batchSize: number): KeyValueCache {
    return new KeyValueCache(batchSize);
  }

  /**
   * With `cache`, the pass continues the positions the cache holds and appends its own keys and
   * values to it (incremental decoding); prefix keys enter the cache on its first pass only and a
   * prompt-tuning prompt is placed once. Positions follow the attention mask (each row counts only
   * its real tokens), so left-padded prompts get the positions they would have alone.
   * `lastPositionOnly` computes the logits of the last position only (what generation reads).
   */
  forward(
    inputs: BackboneInputs,
    options: { training?: boolean; cache?: KeyValueCache; lastPositionOnly?: boolean } = {},
  ): BackboneOutputs {
    const ctx: PassContext = { training: options.training ?? false };
    const c = this.config;
    const cache = options.cache;
    const continuing = cache !== undefined && cache.length > 0;
    return tf.tidy(() => {
      const [b, s] = inputs.inputIds.shape as number[];
      if (cache && cache.batchSize !== b)
        throw new DeltaTuneError(`the cache holds ${cache.batchSize} rows, the inputs ${b}`, 'make one cache per batch (createCache)');
      const words = tf.gather(this.embeddingsSite.table, tf.cast(inputs.inputIds, 'int32'));
      const embedded = runEmbeddings(this.hooks, this.embeddingsSite, words, ctx);
      // A prompt-tuning prompt is already in the cache: only the new tokens' embeddings go on.
      const prepended = continuing ? 0 : embedded.prepended;
      const embeds = continuing && embedded.prepended > 0 ? tf.slice(embedded.embeds, [0, embedded.prepended, 0]) : embedded.embeds;
      const extras = continuing ? [] : this.blocks.map((blk) => runAttention(this.hooks, blk.attention, b, ctx));
      const past = continuing ? cache.length : (extras[0]?.length ?? 0);
      const total = prepended + s;
      checkPositions(c.modelType, past + total, this.maxPositions, s);
      if (c.slidingWindow !== undefined && past + total > c.slidingWindow) {
        throw new DeltaTuneError(
          `${past + total} positions exceed this ${c.modelType} model's sliding_window of ${c.slidingWindow}`,
          `shorten the input to ${c.slidingWindow} tokens (--max-length); a banded sliding-window mask is not implemented yet`,
        );
      }
      let chunkMask = tf.cast(inputs.attentionMask, 'float32');
      if (prepended > 0) chunkMask = tf.concat([tf.ones([b, prepended]), chunkMask], 1);
      const pastMask = continuing ? cache.mask! : tf.ones([b, past]);
      const keyMask = past > 0 ? tf.concat([pastMask, chunkMask], 1) : chunkMask;
      const bias = causalBias(keyMask, total, past); // [b, 1, total, past + total]
      // RoPE position of each token: the real positions before it in its row (padding does not count).
      const seen = continuing ? tf.reshape(cache.positionsSeen!, [b, 1]) : tf.fill([b, 1], past);
      const positions = tf.maximum(tf.add(seen, tf.sub(tf.cumsum(chunkMask, 1), 1)), 0);
      const { cos, sin } = this.rope(positions);
      const repeat = c.numHeads / c.numKeyValueHeads;
      let hidden: Tensor = embeds;
      this.blocks.forEach((blk, i) => {
        hidden = tf.tidy(() => {
          const x = rmsNorm(hidden, blk.inputNorm, c.rmsNormEps);
          const heads = (t: Tensor, n: number) => tf.reshape(t, [b, total, n, c.headDim]);
          let q = heads(runLinear(this.hooks, blk.q, x, ctx), c.numHeads);
          let k = heads(runLinear(this.hooks, blk.k, x, ctx), c.numKeyValueHeads);
          const v = heads(runLinear(this.hooks, blk.v, x, ctx), c.numKeyValueHeads);
          if (blk.qNorm && blk.kNorm) {
            q = rmsNorm(q, blk.qNorm, c.rmsNormEps);
            k = rmsNorm(k, blk.kNorm, c.rmsNormEps);
          }
          q = tf.add(tf.mul(q, cos), tf.mul(rotateHalf(q), sin));
          k = tf.add(tf.mul(k, cos), tf.mul(rotateHalf(k), sin));
          // [b, heads, positions, headDim]; prefix keys/values (or the cached ones) go in front.
          let keys = tf.transpose(k, [0, 2, 1, 3]);
          let values = tf.transpose(v, [0, 2, 1, 3]);
          const before = continuing ? cache.layer(i) : (extras[i] ?? undefined);
          if (before) {
            keys = tf.concat([before.key, keys], 2);
            values = tf.concat([before.value, values], 2);
          }
          cache?.setLayer(i, keys, values);
          // Grouped-query attention: query head j reads key-value head floor(j / repeat). The query
          // heads of a group are stacked as one taller query, so the keys and values are never copied
          // per head (a tile there grew with the cache and dominated a decoding step).
          const kvHeads = c.numKeyValueHeads;
          const length = keys.shape[2] as number;
          const grouped = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [b, kvHeads, repeat * total, c.headDim]);
          const scores = tf.reshape(tf.matMul(grouped, keys, false, true), [b, c.numHeads, total, length]);
          const probs = tf.softmax(tf.add(tf.mul(scores, 1 / Math.sqrt(c.headDim)), bias));
          const context = tf.reshape(tf.matMul(tf.reshape(probs, [b, kvHeads, repeat * total, length]), values), [
            b,
            c.numHeads,
            total,
            c.headDim,
          ]);
          const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, total, c.numHeads * c.headDim]);
          let attended = runLinear(this.hooks, blk.o, merged, ctx);
          attended = runSublayer(this.hooks, blk.attnSublayer, x, attended, ctx);
          const afterAttention = tf.add(hidden, attended);
          const y = rmsNorm(afterAttention, blk.postNorm, c.rmsNormEps);
          const gate = runLinear(this.hooks, blk.gate, y, ctx);
          const gated = tf.mul(tf.mul(gate, tf.sigmoid(gate)), runLinear(this.hooks, blk.up, y, ctx)); // SwiGLU: silu(gate) * up
          let mlp = runLinear(this.hooks, blk.down, gated, ctx);
          mlp = runSublayer(this.hooks, blk.mlpSublayer, y, mlp, ctx);
          return tf.add(afterAttention, mlp);
        });
      });
      cache?.setMask(keyMask);
      hidden = rmsNorm(hidden, this.finalNorm, c.rmsNormEps);
      const flat = tf.reshape(hidden, [b * total, c.hiddenSize]);
      const read = options.lastPositionOnly
        ? tf.reshape(tf.slice(hidden, [0, total - 1, 0], [b, 1, c.hiddenSize]), [b, c.hiddenSize])
        : flat;
      const positionsRead = options.lastPositionOnly ? 1 : total;
      const product = this.vocabularyLogits(read);
      const logits = tf.reshape(product, [b, positionsRead, c.vocabSize]);
      const lengths = tf.sum(tf.cast(inputs.attentionMask, 'int32'), 1);
      // A row of padding only (a finished row in a batched decoding step) reads position 0.
      const last = tf.maximum(tf.add(lengths, tf.scalar(prepended - 1, 'int32')), tf.scalar(0, 'int32'));
      const pooled = tf.gather(flat, tf.add(tf.range(0, b * total, total, 'int32'), last));
      return { lastHiddenState: hidden, logits, pooled, prependedPositions: prepended };
    });
  }

  /**
   * `x [rows, hidden]` times the head transposed: the logits. A frozen head (every delta method)
   * multiplies by its cached transposed copy, and the gradient for `x` by the head as stored, so
   * neither direction asks wasm for a product with a transposed operand (it copies that operand
   * every call; see transposedHead). A trainable head (full fine-tuning) takes the plain path.
   */
  private vocabularyLogits(x: Tensor): Tensor {
    if (this.head.trainable) return tf.matMul(x, this.head, false, true);
    const head = this.head;
    const transposed = this.transposedHead();
    const project = tf.customGrad((input) => ({
      value: tf.matMul(input as Tensor, transposed),
      gradFunc: (dy) => tf.matMul(dy as Tensor, head),
    }));
    return project(x);
  }

  /**
   * The head as `[hidden, vocab]` (see vocabularyLogits): on wasm a product with a transposed operand
   * copies that operand every call (0.5 s per token for SmolLM2-135M's head, against 15 ms for the
   * plain product). Made on first use and again whenever the head's data changes (training,
   * merging a delta into it), at the cost of one more copy of the head while generating.
   */
  private transposedHead(): Tensor {
    const id = this.head.dataId;
    if (this.headCopy?.of !== id) {
      this.headCopy?.tensor.dispose();
      this.headCopy = { of: id, tensor: tf.keep(tf.transpose(this.head)) };
    }
    return this.headCopy.tensor;
  }

  dispose(): void {
    this.headCopy?.tensor.dispose();
    this.headCopy = undefined;
    for (const v of this.parameters.values()) v.dispose();
  }
}

/**
 * Additive mask `[b, 1, total, past + total]`: query i (after `past` cached or virtual positions)
 * may read key j when the row's `keyMask` allows it and j <= past + i.
 */
function causalBias(keyMask: Tensor, total: number, past: number): Tensor {
  const [b, keys] = keyMask.shape as number[];
  const causal = tf.linalg.bandPart(tf.ones([total, keys]), -1, past);
  const allowed = tf.mul(tf.reshape(keyMask, [b, 1, 1, keys]), tf.reshape(causal, [1, 1, total, keys]));
  return tf.mul(tf.sub(1, allowed), -1e9);
}
