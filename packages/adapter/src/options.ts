import { defineOptions, option, TARGETING_OPTIONS, type OptionsOf } from '@deltatune/core';

export const PLACEMENTS = ['houlsby', 'pfeiffer', 'parallel'] as const;
export const NON_LINEARITIES = ['relu', 'gelu', 'swish', 'tanh'] as const;
export const POSITION_NAMES = ['attention', 'feedforward'] as const;

/** Adapter options, declared once: the type, the `--opt` parser, the checks and the help text. */
export const ADAPTER_OPTIONS = defineOptions('adapter', {
  placement: option(
    PLACEMENTS,
    'houlsby (2019): after attention and feed-forward; pfeiffer (2021): after feed-forward only; ' +
      'parallel (He et al. 2022): reads the sublayer input, adds to its output',
    'houlsby',
  ),
  positions: option({ each: POSITION_NAMES }, "overrides the placement's sublayer positions: attention, feedforward"),
  reductionFactor: option('positive', 'bottleneck width = hidden / reductionFactor (rounded), unless bottleneck is given', 16),
  bottleneck: option('positiveInteger', 'bottleneck width, overriding reductionFactor'),
  nonLinearity: option(NON_LINEARITIES, 'activation inside the bottleneck', 'relu'),
  scaling: option('finite', "multiplies the adapter's output before it is added", 1),
  seed: option('integer', 'seed of the initial values', 0),
  ...TARGETING_OPTIONS,
});

export type AdapterOptions = OptionsOf<typeof ADAPTER_OPTIONS>;
export type Placement = AdapterOptions['placement'];
export type NonLinearity = AdapterOptions['nonLinearity'];
export const ADAPTER_DEFAULTS = ADAPTER_OPTIONS.defaults;
