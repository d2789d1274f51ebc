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
  type LinearSite,
  type Rng,
} from '@deltatune/core';
import { factorization } from './factorization';
import { defineLycorisDelta, lycorisConfig, type FactoredSite } from './lycoris-delta';
import { LOKR_OPTIONS, scaling, type LokrOptions } from './options';
import { LYCORIS_CORE_RANGE, LYCORIS_VERSION } from './version';

/**
 * The Kronecker factor shapes of one `[out, in]` weight, as PEFT's LoKr layer decides them:
 * out = a * b and in = c * d (`factorization`), w1 `[a, c]`, w2 `[b, d]`; w2 is low-rank
 * (`w2_a [b, r]`, `w2_b [r, d]`) when r < max(b, d) / 2, w1 (`w1_a [a, r]`, `w1_b [r, c]`) only with
 * `decomposeBoth` and r < max(a, c) / 2.
 */
export interface LokrShape {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
  readonly fullW1: boolean;
  readonly fullW2: boolean;
}

export function lokrShape(
  site: Pick<LinearSite, 'inFeatures' | 'outFeatures'>,
  o: Pick<LokrOptions, 'r' | 'decomposeFactor' | 'decomposeBoth'>,
): LokrShape {
  const [a, b] = factorization(site.outFeatures, o.decomposeFactor);
  const [c, d] = factorization(site.inFeatures, o.decomposeFactor);
  return {
    a,
    b,
    c,
    d,
    fullW1: !(o.decomposeBoth && o.r < Math.max(a, c) / 2),
    fullW2: !(o.r < Math.max(b, d) / 2),
  };
}

/** Trainable parameters of one site: w1's and w2's entries, full or as their low-rank pairs. */
export function lokrSiteParameters(shape: LokrShape, r: number): number {
  const w1 = shape.fullW1 ? shape.a * shape.c : r * (shape.a + shape.c);
  const w2 = shape.fullW2 ? shape.b * shape.d : r * (shape.b + shape.d);
  return w1 + w2;
}

/** `kron(x, y)` of 2-D tensors: `[m, n] ⊗ [p, q] -> [m p, n q]`, entry `(i p + k, j q + l)` = `x[i, j] y[k, l]`. */
export function kron(x: Tensor, y: Tensor): Tensor {
  const [m, n] = x.shape;
  const [p, q] = y.shape;
  return tf.reshape(tf.mul(tf.reshape(x, [m, 1, n, 1]), tf.reshape(y, [1, p, 1, q])), [m * p, n * q]);
}

/**
 * LoKr's scaled update in tfjs layout `[in, out]`: PEFT's `kron(w1, w2) * s` on `[out, in]`,
 * transposed, which is `kron(w1^T, w2^T) * s`.
 */
export function lokrUpdate(w1: Tensor, w2: Tensor, scale: number): Tensor {
  return tf.mul(kron(tf.transpose(w1), tf.transpose(w2)), scale);
}

/** The initial factors, PEFT's three schemes (each zeroes one Kronecker side, except `random`). */
function initialFactors(shape: LokrShape, o: LokrOptions, rng: Rng): Map<string, Tensor> {
  const { a, b, c, d } = shape;
  const r = o.r;
  // PEFT's kaiming_uniform_(a=sqrt(5)): bound 1/sqrt(the tensor's second dimension).
  const random = (s: [number, number]) => kaimingUniform(rng.fork(), s, s[1]);
  const zeroW1 = o.init === 'default';
  const zeroW2 = o.init === 'lycoris';
  const out = new Map<string, Tensor>();
  if (shape.fullW1) out.set('lokr_w1', zeroW1 ? tf.zeros([a, c]) : random([a, c]));
  else {
    out.set('lokr_w1_a', zeroW1 ? tf.zeros([a, r]) : random([a, r]));
    out.set('lokr_w1_b', random([r, c]));
  }
  if (shape.fullW2) out.set('lokr_w2', zeroW2 ? tf.zeros([b, d]) : random([b, d]));
  else {
    out.set('lokr_w2_a', random([b, r]));
    out.set('lokr_w2_b', zeroW2 ? tf.zeros([r, d]) : random([r, d]));
  }
  return out;
}

/**
 * LoKr (Yeh et al. 2024, LyCORIS) on linear sites: `W' = W + (alpha / r) kron(w1, w2)`, the
 * Kronecker product of a small `[a, c]` and a larger `[b, d]` factor (out = a b, in = c d), each full
 * or a rank-r pair. Saved as PEFT's LOKR folders (`lokr_w1`, `lokr_w2_a`...).
 */
export function lokr(options: Partial<LokrOptions> = {}): DeltaSpec<LokrOptions> {
  const o = LOKR_OPTIONS.resolve(options);
  return {
    method: 'lokr',
    version: LYCORIS_VERSION,
    coreRange: LYCORIS_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachLokr(backbone, name, o),
  };
}

function attachLokr(backbone: Backbone, name: string, o: LokrOptions) {
  const sites = selectSites(backbone.sites, 'linear', o, PEFT_DEFAULT_TARGETS[backbone.architecture]);
  const rng = createRng(o.seed);
  const scale = scaling(o);
  const factored: FactoredSite[] = sites.map((site) => {
    const factors = new Map<string, Variable>();
    for (const [k, t] of initialFactors(lokrShape(site, o), o, rng)) factors.set(k, ownedVariable(t));
    return { site, factors };
  });
  const side = (s: FactoredSite, w: 'w1' | 'w2') =>
    s.factors.get(`lokr_${w}`) ?? tf.matMul(s.factors.get(`lokr_${w}_a`)!, s.factors.get(`lokr_${w}_b`)!);
  return defineLycorisDelta({
    backbone,
    name,
    method: 'lokr',
    sites: factored,
    update: (s) => lokrUpdate(side(s, 'w1'), side(s, 'w2'), scale),
    rankDropout: o.rankDropout,
    moduleDropout: o.moduleDropout,
    rescaleRankDropout: o.rankDropoutScale,
    config: () => ({
      ...lycorisConfig('LOKR', o, factored),
      decompose_both: o.decomposeBoth,
      decompose_factor: o.decomposeFactor,
      rank_dropout_scale: o.rankDropoutScale,
      init_weights: o.init === 'default' ? true : o.init === 'lycoris' ? 'lycoris' : false,
    }),
  });
}

/** The sum of `lokrSiteParameters` over the targeted sites: the closed form the accounting must agree with. */
export function lokrParameterFormula(backbone: Backbone, options: Partial<LokrOptions> = {}): number {
  const o = LOKR_OPTIONS.resolve(options);
  return selectSites(backbone.sites, 'linear', o, PEFT_DEFAULT_TARGETS[backbone.architecture]).reduce(
    (n, s) => n + lokrSiteParameters(lokrShape(s, o), o.r),
    0,
  );
}
