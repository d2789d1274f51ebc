import { parseOptions, type DeltaMethod } from '@deltatune/core';
import { bitfit, BITFIT_CORE_RANGE, BITFIT_VERSION, type BitFitOptions } from './bitfit';

export const bitfitMethod: DeltaMethod<BitFitOptions> = {
  name: 'bitfit',
  version: BITFIT_VERSION,
  coreRange: BITFIT_CORE_RANGE,
  packageName: '@deltatune/bitfit',
  description: 'Bias-term fine-tuning (Ben Zaken et al. 2022): one parameter per selected bias element',
  create: (options) => bitfit(options),
  parseOptions: (raw) =>
    parseOptions<BitFitOptions>('bitfit', raw, { subset: 'string', layerNorm: 'boolean', targets: 'strings', exclude: 'strings', layers: 'any', seed: 'number' }),
  fromConfig: (config) => bitfit({ subset: config.subset as BitFitOptions['subset'], layerNorm: config.layer_norm as boolean, targets: (config.biases as string[]).map((b) => b.replace(/\.bias$/, '')) }),
};
