import type { DeltaMethod } from '@deltatune/core';
import { ia3, ia3FromPeft, IA3_OPTIONS, IA3_VERSION, type Ia3Options } from './ia3';
import { IA3_CORE_RANGE } from './version';

export { ia3, ia3FromPeft, IA3_DEFAULTS, IA3_OPTIONS, IA3_VERSION } from './ia3';
export type { Ia3Options } from './ia3';

/** The method as the registry sees it; `deltatune --plugin deltatune-plugin-ia3` registers it. */
export const ia3Method: DeltaMethod<Ia3Options> = {
  name: 'ia3',
  version: IA3_VERSION,
  coreRange: IA3_CORE_RANGE,
  packageName: 'deltatune-plugin-ia3',
  peftType: 'IA3',
  description: 'IA3 (Liu et al. 2022): one learned scale per key/value output and feed-forward input element',
  create: (options) => ia3(options),
  options: IA3_OPTIONS,
  fromConfig: (config) => ia3(ia3FromPeft(config)),
};

/** What the CLI's `--plugin` looks for. */
export const methods = [ia3Method];
