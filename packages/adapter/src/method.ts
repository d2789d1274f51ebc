import { parseOptions, type DeltaMethod } from '@deltatune/core';
import { adapter, ADAPTER_CORE_RANGE, ADAPTER_VERSION, type AdapterOptions } from './adapter';

export const adapterMethod: DeltaMethod<AdapterOptions> = {
  name: 'adapter',
  version: ADAPTER_VERSION,
  coreRange: ADAPTER_CORE_RANGE,
  packageName: '@deltatune/adapter',
  description: 'Bottleneck adapters (Houlsby, Pfeiffer, parallel): in*m + m + m*hidden + hidden per site',
  create: (options) => adapter(options),
  parseOptions: (raw) =>
    parseOptions<AdapterOptions>('adapter', raw, {
      placement: 'string',
      positions: 'strings',
      reductionFactor: 'number',
      bottleneck: 'number',
      nonLinearity: 'string',
      scaling: 'number',
      seed: 'number',
      targets: 'strings',
      exclude: 'strings',
      layers: 'any',
    }),
  fromConfig: (c) =>
    adapter({
      placement: c.placement as AdapterOptions['placement'],
      positions: c.positions as AdapterOptions['positions'],
      reductionFactor: c.reduction_factor as number,
      bottleneck: (c.bottleneck as number | null) ?? undefined,
      nonLinearity: c.non_linearity as AdapterOptions['nonLinearity'],
      scaling: c.scaling as number,
      targets: c.sites as string[],
    }),
};
