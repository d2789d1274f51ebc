import { parseOptions, type DeltaMethod } from '@deltatune/core';
import { lora, LORA_CORE_RANGE, LORA_VERSION } from './lora';
import { LORA_OPTION_TYPES, type LoraOptions } from './options';
import { optionsFromPeft } from './peft';

/** LoRA as the method registry knows it: `registerMethod(loraMethod)` makes `--method lora` work. */
export const loraMethod: DeltaMethod<LoraOptions> = {
  name: 'lora',
  version: LORA_VERSION,
  coreRange: LORA_CORE_RANGE,
  packageName: '@deltatune/lora',
  peftType: 'LORA',
  description: 'Low-rank adaptation of linear layers (Hu et al. 2021); r * (in + out) parameters per targeted layer',
  create: (options) => lora(options),
  parseOptions: (raw) => parseOptions<LoraOptions>('lora', raw, LORA_OPTION_TYPES),
  fromConfig: (config) => {
    const { options, warnings } = optionsFromPeft(config);
    for (const w of warnings) console.warn(`warning: ${w}`);
    return lora(options);
  },
};
