import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { defineDelta, type Backbone, type Delta, type LinearSite, type PassContext } from '@deltatune/core';
import { LYCORIS_VERSION } from './version';

/** PEFT's tensor name for a module path: `base_model.model.<site>.<suffix>` (LoHa/LoKr factors carry no `.weight`). */
export function peftKey(site: string, suffix: string): string {
  return `base_model.model.${site}.${suffix}`;
}

/** One targeted site: its factors by PEFT suffix (`hada_w1_a`, `lokr_w2`...), in PEFT's layout. */
export interface FactoredSite {
  readonly site: LinearSite;
  readonly factors: ReadonlyMap<string, Variable>;
}

/** How a LyCORIS method builds its update and what it saves; the rest (hooks, dropout, merge) is shared. */
export interface LycorisParts {
  readonly backbone: Backbone;
  readonly name: string;
  readonly method: 'loha' | 'lokr';
  readonly sites: readonly FactoredSite[];
  /** The scaled dense update `[in, out]` (tfjs layout) of one site, differentiable in its factors. */
  update(site: FactoredSite): Tensor;
  readonly rankDropout: number;
  readonly moduleDropout: number;
  /** Divide the kept output features by the fraction kept (LoHa always does; LoKr with rank_dropout_scale). */
  readonly rescaleRankDropout: boolean;
  config(): Record<string, unknown>;
}

/**
 * PEFT's training-time dropouts on a dense update: rank dropout zeroes output features (PEFT draws
 * `rand(out) > p` per pass), module dropout drops the whole update (`rand(1) > p`). Tensor ops, so a
 * training step needs no read back to the CPU.
 */
function dropUpdate(update: Tensor, p: LycorisParts, ctx: PassContext, outFeatures: number): Tensor {
  if (!ctx.training) return update;
  let out = update;
  if (p.rankDropout > 0) {
    const keep = tf.cast(tf.greater(tf.randomUniform([outFeatures]), p.rankDropout), 'float32');
    // PEFT divides by the mean kept (NaN when nothing is kept); an all-zero mask stays zero here.
    out = tf.mul(out, p.rescaleRankDropout ? tf.div(keep, tf.maximum(tf.mean(keep), 1e-12)) : keep);
  }
  if (p.moduleDropout > 0) out = tf.mul(out, tf.cast(tf.greater(tf.randomUniform([]), p.moduleDropout), 'float32'));
  return out;
}

/**
 * A LyCORIS delta: on each site a weight hook makes the effective weight `W + dW(factors)`, so the
 * projection stays one matmul (PEFT adds `x dW^T` beside the base output; the sum is the same).
 * Saved tensors are the factors under PEFT's names and layout; merge adds `dW` to the kernel, and
 * core's snapshot makes unmerge exact.
 */
export function defineLycorisDelta(p: LycorisParts): Delta {
  if (p.backbone.architecture === 'gpt2') {
    // PEFT's LyCORIS tuners take nn.Linear and convolutions only, not transformers' Conv1D.
    console.warn(
      `warning: ${p.method} on GPT-2: PEFT cannot load LoHa/LoKr on GPT-2's Conv1D layers, so this delta's folder loads in deltatune only`,
    );
  }
  const variables = new Map<string, Variable>();
  for (const s of p.sites) for (const [suffix, v] of s.factors) variables.set(peftKey(s.site.name, suffix), v);
  return defineDelta({
    name: p.name,
    method: p.method,
    version: LYCORIS_VERSION,
    backbone: p.backbone,
    variables,
    sites: p.sites.map((s) => s.site.name),
    register: () =>
      p.sites.map((s) =>
        p.backbone.hooks.add(
          'linear',
          s.site.name,
          { weight: (kernel, site, ctx) => tf.add(kernel, dropUpdate(p.update(s), p, ctx, site.outFeatures)) },
          { owner: p.name },
        ),
      ),
    config: p.config,
    merge: () => {
      for (const s of p.sites) tf.tidy(() => s.site.kernel.assign(tf.add(s.site.kernel, p.update(s))));
    },
    mergeWeights: () => p.sites.map((s) => s.site.kernel),
  });
}

/**
 * The PEFT config fields LoHa and LoKr share, as PEFT's `LycorisConfig.to_dict()` writes them (sites
 * listed by full name, so `layers_to_transform` stays null).
 */
export function lycorisConfig(
  peftType: 'LOHA' | 'LOKR',
  o: { r: number; alpha: number; rankDropout: number; moduleDropout: number },
  sites: readonly FactoredSite[],
): Record<string, unknown> {
  return {
    peft_type: peftType,
    task_type: null,
    base_model_name_or_path: null,
    revision: null,
    inference_mode: true,
    auto_mapping: null,
    rank_pattern: {},
    alpha_pattern: {},
    r: o.r,
    alpha: o.alpha,
    rank_dropout: o.rankDropout,
    module_dropout: o.moduleDropout,
    use_effective_conv2d: false,
    target_modules: sites.map((s) => s.site.name),
    exclude_modules: null,
    layers_to_transform: null,
    layers_pattern: null,
    modules_to_save: null,
  };
}
