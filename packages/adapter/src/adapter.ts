import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  createRng,
  defineDelta,
  DeltaTuneError,
  kaimingUniform,
  ownedVariable,
  selectSites,
  type Backbone,
  type Delta,
  type DeltaSpec,
  type SublayerSite,
} from '@deltatune/core';

import { ADAPTER_CORE_RANGE, ADAPTER_VERSION } from './version';
import {
  ADAPTER_DEFAULTS,
  ADAPTER_OPTIONS,
  NON_LINEARITIES,
  PLACEMENTS,
  POSITION_NAMES,
  type AdapterOptions,
  type NonLinearity,
  type Placement,
} from './options';

export { ADAPTER_CORE_RANGE, ADAPTER_VERSION };

export { ADAPTER_DEFAULTS, NON_LINEARITIES, PLACEMENTS, POSITION_NAMES, type AdapterOptions, type NonLinearity, type Placement };

const POSITIONS: Record<Placement, ReadonlyArray<'attention' | 'feedforward'>> = {
  houlsby: ['attention', 'feedforward'],
  pfeiffer: ['feedforward'],
  parallel: ['feedforward'],
};

const ACTIVATIONS: Record<NonLinearity, (x: Tensor) => Tensor> = {
  relu: (x) => tf.relu(x),
  gelu: (x) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))),
  swish: (x) => tf.mul(x, tf.sigmoid(x)),
  tanh: (x) => tf.tanh(x),
};

export function adapterSites(backbone: Backbone, o: AdapterOptions): SublayerSite[] {
  const positions = o.positions ?? POSITIONS[o.placement];
  return selectSites(backbone.sites, 'sublayer', o).filter((s) => positions.includes(s.position));
}

/** Bottleneck width at a site. */
export function bottleneckSize(site: SublayerSite, o: Pick<AdapterOptions, 'bottleneck' | 'reductionFactor'>): number {
  return o.bottleneck ?? Math.max(1, Math.round(site.hidden / o.reductionFactor));
}

/** `in*m + m + m*hidden + hidden` per site, `in` the sublayer output (sequential) or input (parallel) width. */
export function adapterParameterCount(backbone: Backbone, options: Partial<AdapterOptions> = {}): number {
  const o = ADAPTER_OPTIONS.resolve(options);
  return adapterSites(backbone, o).reduce((n, s) => {
    const m = bottleneckSize(s, o);
    const inWidth = o.placement === 'parallel' ? s.inFeatures : s.hidden;
    return n + inWidth * m + m + m * s.hidden + s.hidden;
  }, 0);
}

/** A bottleneck adapter `h + s * f(x W_down + b_down) W_up + b_up`, W_up zero at init: an untrained adapter changes nothing. */
export function adapter(options: Partial<AdapterOptions> = {}): DeltaSpec<AdapterOptions> {
  const o = ADAPTER_OPTIONS.resolve(options);
  return {
    method: 'adapter',
    version: ADAPTER_VERSION,
    coreRange: ADAPTER_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachAdapter(backbone, name, o),
  };
}

interface Bottleneck {
  site: SublayerSite;
  down: Variable;
  downBias: Variable;
  up: Variable;
  upBias: Variable;
}

function attachAdapter(backbone: Backbone, name: string, o: AdapterOptions): Delta {
  const sites = adapterSites(backbone, o);
  if (sites.length === 0)
    throw new DeltaTuneError(
      `adapter: the ${o.placement} placement found no sublayer site on this ${backbone.architecture} backbone`,
      'check --opt positions / layers',
    );
  const rng = createRng(o.seed);
  const act = ACTIVATIONS[o.nonLinearity];
  const blocks: Bottleneck[] = sites.map((site) => {
    const m = bottleneckSize(site, o);
    const inWidth = o.placement === 'parallel' ? site.inFeatures : site.hidden;
    return {
      site,
      down: ownedVariable(kaimingUniform(rng.fork(), [inWidth, m], inWidth)),
      downBias: ownedVariable(tf.zeros([m])),
      up: ownedVariable(tf.zeros([m, site.hidden])),
      upBias: ownedVariable(tf.zeros([site.hidden])),
    };
  });
  const variables = new Map<string, Variable>();
  for (const b of blocks) {
    // Names say layer and position: encoder.layer.3.output.adapter.down.weight ([in, m], tfjs layout).
    variables.set(`${b.site.name}.adapter.down.weight`, b.down);
    variables.set(`${b.site.name}.adapter.down.bias`, b.downBias);
    variables.set(`${b.site.name}.adapter.up.weight`, b.up);
    variables.set(`${b.site.name}.adapter.up.bias`, b.upBias);
  }
  const apply = (b: Bottleneck, x: Tensor): Tensor => {
    const width = x.shape[x.rank - 1] as number;
    const flat = tf.reshape(x, [-1, width]) as tf.Tensor2D;
    const h = act(tf.add(tf.matMul(flat, b.down), b.downBias)) as tf.Tensor2D;
    const y = tf.add(tf.matMul(h, b.up), b.upBias);
    return tf.reshape(o.scaling === 1 ? y : tf.mul(y, o.scaling), [...x.shape.slice(0, -1), b.site.hidden]);
  };
  return defineDelta({
    name,
    method: 'adapter',
    version: ADAPTER_VERSION,
    backbone,
    variables,
    sites: sites.map((s) => s.name),
    register: () =>
      blocks.map((b) =>
        backbone.hooks.add(
          'sublayer',
          b.site.name,
          ({ input, output }) => tf.add(output, apply(b, o.placement === 'parallel' ? input : output)),
          { owner: name },
        ),
      ),
    config: () => ({
      method: 'adapter',
      placement: o.placement,
      positions: o.positions ?? POSITIONS[o.placement],
      reduction_factor: o.reductionFactor,
      bottleneck: o.bottleneck ?? null,
      non_linearity: o.nonLinearity,
      scaling: o.scaling,
      sites: sites.map((s) => s.name),
      layout: 'weights are [in, out] (tfjs); x W + b',
    }),
  });
}
