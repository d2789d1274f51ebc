import type { DeltaSpec } from '@deltatune/core';
import { attachLora } from './lora';
import { LORA_OPTIONS, type LoraOptions } from './options';
import { LORA_CORE_RANGE, LORA_VERSION } from './version';

/**
 * DoRA (Liu et al. 2024), weight-decomposed LoRA, on linear sites:
 * `W' = m * (W + s A B) / ||W + s A B||`, the norm per output feature and a constant in the backward
 * pass (as PEFT). `m` (`[out]`, trainable) starts at the norms of the base weight, so a fresh DoRA
 * computes what the base model does. LoRA's options; `r * (in + out) + out` parameters per site.
 * Saved as PEFT does: a LoRA folder with `use_dora: true` and `<site>.lora_magnitude_vector` tensors.
 */
export function dora(options: Partial<LoraOptions> = {}): DeltaSpec<LoraOptions> {
  const o = LORA_OPTIONS.resolve(options);
  return {
    method: 'dora',
    version: LORA_VERSION,
    coreRange: LORA_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachLora(backbone, name, o, true),
  };
}
