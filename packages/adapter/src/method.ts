import { type DeltaMethod, configFields } from '@deltatune/core';
import {
  adapter,
  ADAPTER_CORE_RANGE,
  ADAPTER_DEFAULTS,
  ADAPTER_VERSION,
  NON_LINEARITIES,
  PLACEMENTS,
  POSITION_NAMES,
  type AdapterOptions,
} from './adapter';
import { ADAPTER_OPTIONS } from './options';

const { configObject, describe, fieldError, num, oneOf, strings } = configFields;

export const adapterMethod: DeltaMethod<AdapterOptions> = {
  name: 'adapter',
  version: ADAPTER_VERSION,
  coreRange: ADAPTER_CORE_RANGE,
  packageName: '@deltatune/adapter',
  description: 'Bottleneck adapters (Houlsby, Pfeiffer, parallel): in*m + m + m*hidden + hidden per site',
  create: (options) => adapter(options),
  options: ADAPTER_OPTIONS,
  fromConfig: (raw) => {
    const c = configObject(raw);
    const sites = strings(c, 'sites');
    if (!sites?.length)
      throw fieldError(
        'sites',
        sites ? 'is an empty list' : 'is missing',
        'save the delta again: "sites" lists the sublayers the adapter acts on',
      );
    const positions = c.positions === undefined || c.positions === null ? undefined : strings(c, 'positions');
    const wrong = positions?.find((p) => !(POSITION_NAMES as readonly string[]).includes(p));
    if (wrong !== undefined || positions?.length === 0) {
      throw fieldError(
        'positions',
        `is ${describe(c.positions)}, not a list of ${POSITION_NAMES.join(', ')}`,
        'set "positions" to ["attention", "feedforward"] or ["feedforward"]',
      );
    }
    return adapter({
      placement: oneOf(c, 'placement', PLACEMENTS, ADAPTER_DEFAULTS.placement),
      positions: positions as AdapterOptions['positions'],
      reductionFactor: num(c, 'reduction_factor', 'positive', ADAPTER_DEFAULTS.reductionFactor),
      bottleneck: num(c, 'bottleneck', 'positiveInteger'),
      nonLinearity: oneOf(c, 'non_linearity', NON_LINEARITIES, ADAPTER_DEFAULTS.nonLinearity),
      scaling: num(c, 'scaling', 'finite', ADAPTER_DEFAULTS.scaling),
      targets: sites,
    });
  },
};
