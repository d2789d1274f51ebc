import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  defineDelta,
  DeltaTuneError,
  defineOptions,
  option,
  ownedVariable,
  selectSites,
  TARGETING_OPTIONS,
  type Backbone,
  type Delta,
  type DeltaSpec,
  type LinearSite,
  type NormSite,
  type OptionsOf,
  type TargetPattern,
} from '@deltatune/core';

import { BITFIT_CORE_RANGE, BITFIT_VERSION } from './version';

export { BITFIT_CORE_RANGE, BITFIT_VERSION };

export const SUBSETS = ['all', 'query-intermediate'] as const;

/** BitFit's options, declared once: the type, the `--opt` parser, the checks and the help text. */
export const BITFIT_OPTIONS = defineOptions('bitfit', {
  subset: option(
    SUBSETS,
    'all: every bias of every linear layer (plus layer norms, see layerNorm); query-intermediate: the attention query ' +
      'and the first feed-forward layer, the subset Ben Zaken et al. (2022) found nearly as good',
    'all',
  ),
  layerNorm: option('boolean', "also train the layer norms' biases (beta)", true),
  seed: option('integer', "accepted like every method's seed; BitFit starts at zero, so it changes nothing", 0),
  ...TARGETING_OPTIONS,
});

export type BitFitOptions = OptionsOf<typeof BITFIT_OPTIONS>;
export const BITFIT_DEFAULTS = BITFIT_OPTIONS.defaults;

const SUBSET_TARGETS: Record<BitFitOptions['subset'], readonly TargetPattern[] | undefined> = {
  all: undefined,
  'query-intermediate': ['query', 'intermediate.dense'],
};

interface BiasDelta {
  readonly name: string;
  /** The base parameter this delta adds to. */
  readonly base: Variable;
  readonly delta: Variable;
}

/**
 * BitFit (Ben Zaken et al. 2022): only bias terms train. Each selected bias gets an additive
 * delta `d` (zero at attach), applied by a hook (`y + d`), so the base stays untouched and detach
 * is exact. Saved files hold the trained biases (`base + d`) under their Hugging Face names.
 */
export function bitfit(options: Partial<BitFitOptions> = {}): DeltaSpec<BitFitOptions> {
  const o = BITFIT_OPTIONS.resolve(options);
  return {
    method: 'bitfit',
    version: BITFIT_VERSION,
    coreRange: BITFIT_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachBitFit(backbone, name, o),
  };
}

/** The sites whose biases this configuration trains. */
export function bitfitSites(backbone: Backbone, o: BitFitOptions): Array<LinearSite | NormSite> {
  // The paper's subset is two linear biases; layer norms join only the `all` selection.
  const kinds = o.layerNorm && o.subset === 'all' ? (['linear', 'norm'] as const) : (['linear'] as const);
  const withBias = backbone.sites.filter((s) => (s.kind === 'linear' && s.bias) || s.kind === 'norm');
  if (withBias.length === 0) {
    // Llama-family models have no biases and RMSNorms without one: nothing for BitFit to train.
    throw new DeltaTuneError(
      `bitfit: this ${backbone.architecture} backbone has no bias terms (no linear layer with a bias, no layer norm with one)`,
      'use a method that trains weights here, e.g. --method lora or --method ia3',
    );
  }
  return selectSites(withBias, [...kinds], { ...o, targets: o.targets ?? SUBSET_TARGETS[o.subset] }) as Array<LinearSite | NormSite>;
}

function attachBitFit(backbone: Backbone, name: string, o: BitFitOptions): Delta {
  const sites = bitfitSites(backbone, o);
  const biases: Array<BiasDelta & { site: LinearSite | NormSite }> = sites.map((site) => {
    const base = site.kind === 'linear' ? site.bias! : site.beta;
    return { site, name: `${site.name}.bias`, base, delta: ownedVariable(tf.zerosLike(base)) };
  });
  const variables = new Map<string, Variable>(biases.map((b) => [b.name, b.delta]));
  // Saved files hold base + delta; once merged, the base already holds it.
  const isMerged = () => self.merged === true;
  const self: Delta = defineDelta({
    name,
    method: 'bitfit',
    version: BITFIT_VERSION,
    backbone,
    variables,
    sites: sites.map((s) => s.name),
    register: () =>
      biases.map((b) =>
        b.site.kind === 'linear'
          ? backbone.hooks.add('linear', b.site.name, { output: (_x, y) => tf.add(y, b.delta) }, { owner: name })
          : backbone.hooks.add('norm', b.site.name, (y) => tf.add(y, b.delta), { owner: name }),
      ),
    config: () => ({
      method: 'bitfit',
      subset: o.subset,
      layer_norm: o.layerNorm,
      biases: biases.map((b) => b.name),
      stores: 'trained bias values (base + delta)',
    }),
    // The trained biases themselves, as a Hugging Face checkpoint would hold them.
    tensors: () => new Map<string, Tensor>(biases.map((b) => [b.name, isMerged() ? tf.clone(b.base) : tf.add(b.base, b.delta)])),
    assign: (tensors) => {
      for (const b of biases) tf.tidy(() => b.delta.assign(tf.sub(tensors.get(b.name)!, b.base)));
    },
    // Core snapshots the biases before merging, so unmerge restores them bit for bit.
    merge: () => {
      for (const b of biases) tf.tidy(() => b.base.assign(tf.add(b.base, b.delta)));
    },
    mergeWeights: () => biases.map((b) => b.base),
  });
  return self;
}

/** Elements of the selected biases: what BitFit trains. */
export function bitfitParameterCount(backbone: Backbone, options: Partial<BitFitOptions> = {}): number {
  return bitfitSites(backbone, BITFIT_OPTIONS.resolve(options)).reduce((n, s) => n + (s.kind === 'linear' ? s.outFeatures : s.hidden), 0);
}
