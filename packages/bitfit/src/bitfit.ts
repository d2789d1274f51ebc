import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { defineDelta, DeltaTuneError, ownedVariable, selectSites, type Backbone, type Delta, type DeltaSpec, type LinearSite, type NormSite, type Targeting, type TargetPattern } from '@deltatune/core';

import { BITFIT_CORE_RANGE, BITFIT_VERSION } from './version';

export { BITFIT_CORE_RANGE, BITFIT_VERSION };

export interface BitFitOptions extends Targeting {
  /**
   * `all`: every bias of every linear layer (plus layer norms, see `layerNorm`).
   * `query-intermediate`: the attention query and the first feed-forward layer, the smallest
   * subset Ben Zaken et al. (2022) found nearly as good. `targets` narrows further either way.
   */
  readonly subset: 'all' | 'query-intermediate';
  /** Also train the layer norms' biases (beta). */
  readonly layerNorm: boolean;
}

export const SUBSETS: ReadonlyArray<BitFitOptions['subset']> = ['all', 'query-intermediate'];

export const BITFIT_DEFAULTS: Omit<BitFitOptions, keyof Targeting> = { subset: 'all', layerNorm: true };

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
  const o: BitFitOptions = { ...BITFIT_DEFAULTS, ...options };
  if (!SUBSETS.includes(o.subset))
    throw new DeltaTuneError(`bitfit: subset must be all or query-intermediate, got ${o.subset}`, 'e.g. --opt subset=query-intermediate');
  if (typeof o.layerNorm !== 'boolean')
    throw new DeltaTuneError(`bitfit: layerNorm must be true or false, got ${o.layerNorm}`, 'e.g. --opt layerNorm=false');
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
  const withBias = backbone.sites.filter((s) => s.kind !== 'linear' || s.bias);
  return selectSites(withBias, [...kinds], { ...o, targets: o.targets ?? SUBSET_TARGETS[o.subset] }) as Array<LinearSite | NormSite>;
}

function attachBitFit(backbone: Backbone, name: string, o: BitFitOptions): Delta {
  const sites = bitfitSites(backbone, o);
  const biases: Array<BiasDelta & { site: LinearSite | NormSite }> = sites.map((site) => {
    const base = site.kind === 'linear' ? site.bias! : site.beta;
    return { site, name: `${site.name}.bias`, base, delta: ownedVariable(tf.zerosLike(base)) };
  });
  const variables = new Map<string, Variable>(biases.map((b) => [b.name, b.delta]));
  let merged = false;
  const originals = new Map<Variable, Tensor>();
  return defineDelta({
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
    tensors: () => new Map<string, Tensor>(biases.map((b) => [b.name, merged ? tf.clone(b.base) : tf.add(b.base, b.delta)])),
    assign: (tensors) => {
      for (const b of biases) tf.tidy(() => b.delta.assign(tf.sub(tensors.get(b.name)!, b.base)));
    },
    // Merge keeps the original biases, so unmerge restores them bit for bit.
    merge: () => {
      for (const b of biases) {
        originals.set(b.base, tf.clone(b.base));
        tf.tidy(() => b.base.assign(tf.add(b.base, b.delta)));
      }
      merged = true;
    },
    unmerge: () => {
      for (const [base, original] of originals) {
        base.assign(original);
        original.dispose();
      }
      originals.clear();
      merged = false;
    },
  });
}

/** Elements of the selected biases: what BitFit trains. */
export function bitfitParameterCount(backbone: Backbone, options: Partial<BitFitOptions> = {}): number {
  return bitfitSites(backbone, { ...BITFIT_DEFAULTS, ...options }).reduce(
    (n, s) => n + (s.kind === 'linear' ? s.outFeatures : s.hidden),
    0,
  );
}
