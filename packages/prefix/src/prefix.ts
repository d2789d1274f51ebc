import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { createRng, defineDelta, DeltaTuneError, kaimingUniform, normal, ownedVariable, selectSites, type AttentionSite, type Backbone, type Delta, type DeltaSpec, type Targeting } from '@deltatune/core';
import { CORE_RANGE } from './prompt';

import { PREFIX_VERSION } from './version';

export { PREFIX_VERSION };

export interface PrefixTuningOptions extends Targeting {
  readonly virtualTokens: number;
  /**
   * Li & Liang's reparameterisation: train a small embedding and an MLP that maps it to the
   * keys/values (more stable); saving keeps only the MLP's output, as PEFT does.
   */
  readonly projection: boolean;
  /** Hidden width of the projection MLP. */
  readonly projectionHidden: number;
  /** Standard deviation of the initial keys/values (no projection). */
  readonly initStd: number;
  readonly seed: number;
}

export const PREFIX_DEFAULTS: Omit<PrefixTuningOptions, keyof Targeting> = {
  virtualTokens: 8,
  projection: false,
  projectionHidden: 64,
  initStd: 0.1,
  seed: 0,
};

/** Width of one layer's keys (= values) in the table: heads * headDim. */
const widthOf = (s: AttentionSite) => s.numHeads * s.headDim;

/**
 * Prefix tuning (Li & Liang 2021): learned keys and values prepended at every attention site,
 * visible to every query (causal models included); the attention mask gets ones in front and
 * positions continue after them, as transformers does for past key/values. The output length does
 * not change. The table is one `[virtualTokens, sum_l 2 * width_l]` tensor laid out as PEFT's
 * `prompt_embeddings` (layer l: keys, then values).
 */
export function prefixTuning(options: Partial<PrefixTuningOptions> = {}): DeltaSpec<PrefixTuningOptions> {
  const o: PrefixTuningOptions = { ...PREFIX_DEFAULTS, ...options };
  if (!Number.isInteger(o.virtualTokens) || o.virtualTokens < 1)
    throw new DeltaTuneError(`prefix: virtualTokens must be a positive integer, got ${o.virtualTokens}`, 'e.g. --opt virtualTokens=8');
  if (!Number.isInteger(o.projectionHidden) || o.projectionHidden < 1) {
    throw new DeltaTuneError(
      `prefix: projectionHidden must be a positive integer, got ${o.projectionHidden}`,
      'e.g. --opt projectionHidden=64',
    );
  }
  if (!(Number.isFinite(o.initStd) && o.initStd >= 0))
    throw new DeltaTuneError(`prefix: initStd must be a number of 0 or more, got ${o.initStd}`, 'e.g. --opt initStd=0.1');
  return {
    method: 'prefix',
    version: PREFIX_VERSION,
    coreRange: CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachPrefix(backbone, name, o),
  };
}

function attachPrefix(backbone: Backbone, name: string, o: PrefixTuningOptions): Delta {
  const sites = selectSites(backbone.sites, 'attention', o);
  const offsets: number[] = [];
  let total = 0;
  for (const s of sites) {
    offsets.push(total);
    total += 2 * widthOf(s);
  }
  const rng = createRng(o.seed);
  const tokenDim = widthOf(sites[0]);
  const variables = new Map<string, Variable>();
  let table: () => Tensor;
  if (o.projection) {
    const embedding = ownedVariable(normal(rng.fork(), [o.virtualTokens, tokenDim], 1));
    const w1 = ownedVariable(kaimingUniform(rng.fork(), [tokenDim, o.projectionHidden], tokenDim));
    const b1 = ownedVariable(tf.zeros([o.projectionHidden]));
    const w2 = ownedVariable(kaimingUniform(rng.fork(), [o.projectionHidden, total], o.projectionHidden));
    const b2 = ownedVariable(tf.zeros([total]));
    Object.entries({
      embedding,
      'transform.0.weight': w1,
      'transform.0.bias': b1,
      'transform.2.weight': w2,
      'transform.2.bias': b2,
    }).forEach(([k, v]) => variables.set(`prompt_encoder.${k}`, v));
    table = () => tf.add(tf.matMul(tf.tanh(tf.add(tf.matMul(embedding, w1), b1)), w2), b2);
  } else {
    const t = ownedVariable(normal(rng, [o.virtualTokens, total], o.initStd));
    variables.set('prompt_embeddings', t);
    table = () => t;
  }
  const saveShape = new Map<string, readonly number[]>([['prompt_embeddings', [o.virtualTokens, total]]]);
  return defineDelta({
    name,
    method: 'prefix',
    version: PREFIX_VERSION,
    backbone,
    variables,
    sites: sites.map((s) => s.name),
    register: () =>
      sites.map((site, i) =>
        backbone.hooks.add(
          'attention',
          site.name,
          (batch) => {
            const t = table();
            const width = widthOf(site);
            const part = (begin: number) => {
              const slab = tf.slice(t, [0, offsets[i] + begin], [o.virtualTokens, width]); // [p, heads*hd]
              const heads = tf.transpose(tf.reshape(slab, [o.virtualTokens, site.numHeads, site.headDim]), [1, 0, 2]);
              return tf.tile(tf.expandDims(heads, 0), [batch, 1, 1, 1]);
            };
            return { key: part(0), value: part(width) };
          },
          { owner: name },
        ),
      ),
    config: () => ({
      peft_type: 'PREFIX_TUNING',
      task_type: null,
      inference_mode: true,
      num_virtual_tokens: o.virtualTokens,
      token_dim: tokenDim,
      num_transformer_submodules: 1,
      num_attention_heads: sites[0].numHeads,
      num_layers: sites.length,
      encoder_hidden_size: o.projectionHidden,
      // Saved files hold the projected table, so they load without the MLP (PEFT does the same).
      prefix_projection: false,
      deltatune_trained_with_projection: o.projection,
      attention_sites: sites.map((s) => s.name),
    }),
    tensors: () => new Map([['prompt_embeddings', o.projection ? table() : variables.get('prompt_embeddings')!]]),
    expectedShapes: () => saveShape,
    assign: (tensors) => {
      if (o.projection)
        throw new DeltaTuneError(
          'a prefix delta with projection cannot load a saved table',
          'load it with projection=false (what adapter_config.json says)',
        );
      variables.get('prompt_embeddings')!.assign(tensors.get('prompt_embeddings')!);
    },
  });
}

/** `virtualTokens * sum_l 2 * width_l` (without projection). */
export function prefixParameterCount(backbone: Backbone, options: Partial<PrefixTuningOptions> = {}): number {
  const o = { ...PREFIX_DEFAULTS, ...options };
  return o.virtualTokens * selectSites(backbone.sites, 'attention', o).reduce((n, s) => n + 2 * widthOf(s), 0);
}
