import { configFields, type DeltaMethod, type DeltaSpec } from '@deltatune/core';
import { dora } from './dora';
import { lora, LORA_CORE_RANGE, LORA_VERSION } from './lora';
import { LORA_OPTIONS, type LoraOptions } from './options';
import { optionsFromPeft } from './peft';

/** A spec from a PEFT LoRA config, checking `fan_in_fan_out` against the backbone at attach. */
function fromPeftConfig(config: Record<string, unknown>, useDora: boolean): DeltaSpec<LoraOptions> {
  const { options, warnings } = optionsFromPeft(config, { dora: useDora });
  for (const w of warnings) console.warn(`warning: ${w}`);
  const spec = useDora ? dora(options) : lora(options);
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
}

/**
 * LoRA as the method registry knows it: `registerMethod(loraMethod)` makes `--method lora` work.
 * A PEFT LoRA folder with `use_dora: true` loads as DoRA (PEFT keeps both under peft_type LORA).
 */
export const loraMethod: DeltaMethod<LoraOptions> = {
  name: 'lora',
  version: LORA_VERSION,
  coreRange: LORA_CORE_RANGE,
  packageName: '@deltatune/lora',
  peftType: 'LORA',
  description: 'Low-rank adaptation of linear layers (Hu et al. 2021); r * (in + out) parameters per targeted layer',
  create: (options) => lora(options),
  options: LORA_OPTIONS,
  fromConfig: (config) => fromPeftConfig(config, configFields.bool(configFields.configObject(config), 'use_dora') === true),
};

/**
 * DoRA, weight-decomposed LoRA (Liu et al. 2024): `--method dora`. Its folders are PEFT LoRA folders
 * with `use_dora: true`; PEFT-written ones (no deltatune stamp) reach it through `loraMethod`.
 */
export const doraMethod: DeltaMethod<LoraOptions> = {
  name: 'dora',
  version: LORA_VERSION,
  coreRange: LORA_CORE_RANGE,
  packageName: '@deltatune/lora',
  description:
    'Weight-decomposed LoRA (Liu et al. 2024): m * (W + s B A) / ||W + s B A|| per output feature; ' +
    'r * (in + out) + out parameters per targeted layer',
  create: (options) => dora(options),
  options: LORA_OPTIONS,
  fromConfig: (config) => fromPeftConfig(config, true),
};
