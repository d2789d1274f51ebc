import type { DeltaMethod } from '@deltatune/core';
import { lora, LORA_CORE_RANGE, LORA_VERSION } from './lora';
import { LORA_OPTIONS, type LoraOptions } from './options';
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
  options: LORA_OPTIONS,
  fromConfig: (config) => {
    const { options, warnings } = optionsFromPeft(config);
    for (const w of warnings) console.warn(`warning: ${w}`);
    const spec = lora(options);
    const fanInFanOut = config.fan_in_fan_out;
    if (typeof fanInFanOut !== 'boolean') return spec;
    return {
      ...spec,
      attach: (backbone, name) => {
        // PEFT corrects a mismatch with a warning too: only merging reads the flag, and our merge knows the layout.
        if (fanInFanOut !== (backbone.architecture === 'gpt2')) {
          const says = `adapter_config.json says fan_in_fan_out=${fanInFanOut}`;
          console.warn(`warning: ${says}, but this is a ${backbone.architecture} backbone; using its own layout`);
        }
        return spec.attach(backbone, name);
      },
    };
  },
};
