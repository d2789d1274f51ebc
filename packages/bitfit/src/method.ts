import { type DeltaMethod, configFields } from '@deltatune/core';
import { bitfit, BITFIT_OPTIONS, BITFIT_CORE_RANGE, BITFIT_DEFAULTS, BITFIT_VERSION, SUBSETS, type BitFitOptions } from './bitfit';

const { bool, configObject, fieldError, oneOf, strings } = configFields;

export const bitfitMethod: DeltaMethod<BitFitOptions> = {
  name: 'bitfit',
  version: BITFIT_VERSION,
  coreRange: BITFIT_CORE_RANGE,
  packageName: '@deltatune/bitfit',
  description: 'Bias-term fine-tuning (Ben Zaken et al. 2022): one parameter per selected bias element',
  create: (options) => bitfit(options),
  options: BITFIT_OPTIONS,
  fromConfig: (raw) => {
    const c = configObject(raw);
    const biases = strings(c, 'biases');
    if (!biases?.length)
      throw fieldError(
        'biases',
        biases ? 'is an empty list' : 'is missing',
        'save the delta again: "biases" names the trained bias tensors',
      );
    const wrong = biases.find((b) => !b.endsWith('.bias'));
    if (wrong !== undefined)
      throw fieldError('biases', `names ${JSON.stringify(wrong)}, not a bias (a name ending in .bias)`, 'save the delta again');
    return bitfit({
      subset: oneOf(c, 'subset', SUBSETS, BITFIT_DEFAULTS.subset),
      layerNorm: bool(c, 'layer_norm', BITFIT_DEFAULTS.layerNorm),
      targets: biases.map((b) => b.replace(/\.bias$/, '')),
    });
  },
};
