import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  createRng,
  defineDelta,
  DeltaTuneError,
  kaimingUniform,
  normal,
  ownedVariable,
  selectSites,
  type AttentionSite,
  type Backbone,
  type Delta,
  type DeltaSpec,
} from '@deltatune/core';
import { CORE_RANGE } from './prompt';

import { PREFIX_VERSION } from './version';
import { PREFIX_DEFAULTS, PREFIX_OPTIONS, type PrefixTuningOptions } from './options';

export { PREFIX_VERSION };

export { PREFIX_DEFAULTS, type PrefixTuningOptions };

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
  const o = PREFIX_OPTIONS.resolve(options);
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
    // tidy: the projected table's intermediates (the MLP's layers) would otherwise outlive the save.
    tensors: () => new Map([['prompt_embeddings', o.projection ? tf.tidy(table) : variables.get('prompt_embeddings')!]]),
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
  const o = PREFIX_OPTIONS.resolve(options);
  return o.virtualTokens * selectSites(backbone.sites, 'attention', o).reduce((n, s) => n + 2 * widthOf(s), 0);
}
