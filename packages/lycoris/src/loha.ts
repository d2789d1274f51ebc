import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  createRng,
  kaimingUniform,
  ownedVariable,
  PEFT_DEFAULT_TARGETS,
  selectSites,
  type Backbone,
  type DeltaSpec,
} from '@deltatune/core';
import { defineLycorisDelta, lycorisConfig, type FactoredSite } from './lycoris-delta';
import { LOHA_OPTIONS, scaling, type LohaOptions } from './options';
import { LYCORIS_CORE_RANGE, LYCORIS_VERSION } from './version';

/** LoHa's factor names and PEFT shapes for a Linear weight `[out, in]`: w?_a `[out, r]`, w?_b `[r, in]`. */
export const LOHA_FACTORS = ['hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b'] as const;

/**
 * LoHa's scaled update in tfjs layout `[in, out]`: PEFT's `((w1_a w1_b) ⊙ (w2_a w2_b)) * s` on
 * `[out, in]`, transposed, which is `(w1_b^T w1_a^T) ⊙ (w2_b^T w2_a^T) * s`.
 */
export function lohaUpdate(w1a: Tensor, w1b: Tensor, w2a: Tensor, w2b: Tensor, scale: number): Tensor {
  return tf.mul(tf.mul(tf.matMul(w1b, w1a, true, true), tf.matMul(w2b, w2a, true, true)), scale);
}

/**
 * LoHa (Hyeon-Woo et al. 2022, FedPara; LyCORIS) on linear sites: `W' = W + (alpha / r) (w1_a w1_b) ⊙ (w2_a w2_b)`,
 * a Hadamard product of two rank-r products, so the update can reach rank r^2 with `2 r (in + out)`
 * parameters per site. Saved as PEFT's LOHA folders (`hada_w1_a`...).
 */
export function loha(options: Partial<LohaOptions> = {}): DeltaSpec<LohaOptions> {
  const o = LOHA_OPTIONS.resolve(options);
  return {
    method: 'loha',
    version: LYCORIS_VERSION,
    coreRange: LYCORIS_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachLoha(backbone, name, o),
  };
}

function attachLoha(backbone: Backbone, name: string, o: LohaOptions) {
  const sites = selectSites(backbone.sites, 'linear', o, PEFT_DEFAULT_TARGETS[backbone.architecture]);
  const rng = createRng(o.seed);
  const scale = scaling(o);
  const factored: FactoredSite[] = sites.map((site) => {
    const [out, inn] = [site.outFeatures, site.inFeatures];
    // PEFT: kaiming_uniform_(a=sqrt(5)) on each factor (bound 1/sqrt(its second dimension)); w2_b zero unless random.
    const w2b = o.init === 'random' ? kaimingUniform(rng.fork(), [o.r, inn], inn) : tf.zeros([o.r, inn]);
    const factors = new Map<string, Variable>([
      ['hada_w1_a', ownedVariable(kaimingUniform(rng.fork(), [out, o.r], o.r))],
      ['hada_w1_b', ownedVariable(kaimingUniform(rng.fork(), [o.r, inn], inn))],
      ['hada_w2_a', ownedVariable(kaimingUniform(rng.fork(), [out, o.r], o.r))],
      ['hada_w2_b', ownedVariable(w2b)],
    ]);
    return { site, factors };
  });
  const f = (s: FactoredSite, k: (typeof LOHA_FACTORS)[number]) => s.factors.get(k)!;
  return defineLycorisDelta({
    backbone,
    name,
    method: 'loha',
    sites: factored,
    update: (s) => lohaUpdate(f(s, 'hada_w1_a'), f(s, 'hada_w1_b'), f(s, 'hada_w2_a'), f(s, 'hada_w2_b'), scale),
    rankDropout: o.rankDropout,
    moduleDropout: o.moduleDropout,
    // PEFT's LoHa always rescales by the fraction kept.
    rescaleRankDropout: true,
    config: () => ({ ...lycorisConfig('LOHA', o, factored), init_weights: o.init === 'default' }),
  });
}

/** `2 r (in + out)` per targeted site: the closed form the accounting must agree with. */
export function lohaParameterFormula(backbone: Backbone, options: Partial<LohaOptions> = {}): number {
  const o = LOHA_OPTIONS.resolve(options);
  return selectSites(backbone.sites, 'linear', o, PEFT_DEFAULT_TARGETS[backbone.architecture]).reduce(
    (n, s) => n + 2 * o.r * (s.inFeatures + s.outFeatures),
    0,
  );
}
