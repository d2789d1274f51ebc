import type { DeltaMethod } from '@deltatune/core';
import { loha } from './loha';
import { lokr } from './lokr';
import { LOHA_OPTIONS, LOKR_OPTIONS, type LohaOptions, type LokrOptions } from './options';
import { lohaOptionsFromPeft, lokrOptionsFromPeft } from './peft-config';
import { LYCORIS_CORE_RANGE, LYCORIS_VERSION } from './version';

function warnAll(warnings: readonly string[]): void {
  for (const w of warnings) console.warn(`warning: ${w}`);
}

/** LoHa as the method registry knows it: `--method loha`, and PEFT LOHA folders. */
export const lohaMethod: DeltaMethod<LohaOptions> = {
  name: 'loha',
  version: LYCORIS_VERSION,
  coreRange: LYCORIS_CORE_RANGE,
  packageName: '@deltatune/lycoris',
  peftType: 'LOHA',
  description:
    'Low-rank Hadamard product (FedPara / LyCORIS): W + (alpha / r) (w1_a w1_b) ⊙ (w2_a w2_b); ' +
    '2 r (in + out) parameters per targeted layer',
  create: (options) => loha(options),
  options: LOHA_OPTIONS,
  fromConfig: (config) => {
    const { options, warnings } = lohaOptionsFromPeft(config);
    warnAll(warnings);
    return loha(options);
  },
};

/** LoKr as the method registry knows it: `--method lokr`, and PEFT LOKR folders. */
export const lokrMethod: DeltaMethod<LokrOptions> = {
  name: 'lokr',
  version: LYCORIS_VERSION,
  coreRange: LYCORIS_CORE_RANGE,
  packageName: '@deltatune/lycoris',
  peftType: 'LOKR',
  description:
    'Low-rank Kronecker product (LyCORIS): W + (alpha / r) kron(w1, w2), out = a b, in = c d; ' +
    'w1 [a, c] plus w2 [b, d] (or its rank-r pair) per targeted layer',
  create: (options) => lokr(options),
  options: LOKR_OPTIONS,
  fromConfig: (config) => {
    const { options, warnings } = lokrOptionsFromPeft(config);
    warnAll(warnings);
    return lokr(options);
  },
};

/** Both, for `registerMethod` in a loop or a CLI `--plugin @deltatune/lycoris`. */
export const methods = [lohaMethod, lokrMethod];
