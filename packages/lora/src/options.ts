import { defineOptions, option, PEFT_DEFAULT_TARGETS, TARGETING_OPTIONS, type OptionsOf } from '@deltatune/core';

/** LoRA's options, declared once: the type, the `--opt` parser, the checks and the help text. */
export const LORA_OPTIONS = defineOptions('lora', {
  r: option('positiveInteger', 'rank of the update', 8),
  alpha: option('finite', 'scaling numerator: the update is multiplied by alpha / r (alpha / sqrt(r) with rsLoRA)', 8),
  dropout: option('probability', "dropout on the LoRA path's input during training", 0),
  rsLoRA: option('boolean', 'rank-stabilised scaling alpha / sqrt(r) (Kalajdzievski 2023)', false),
  init: option(
    ['kaiming', 'random'],
    "kaiming: A Kaiming-uniform, B zero (PEFT's default: an untrained LoRA changes nothing); random: both random (tests)",
    'kaiming',
  ),
  seed: option('integer', 'seed of the initial values', 0),
  bias: option(
    ['none', 'all', 'lora_only'],
    'which base biases train with the delta, as PEFT: none, every bias, or those of the LoRA layers',
    'none',
  ),
  ...TARGETING_OPTIONS,
});

export type LoraOptions = OptionsOf<typeof LORA_OPTIONS>;

export const LORA_DEFAULTS = LORA_OPTIONS.defaults;

/** Targets used when none are given, per architecture: PEFT's table (core holds it for the LoRA family). */
export const DEFAULT_TARGETS = PEFT_DEFAULT_TARGETS;

/** The factor on `x A B`: `alpha / r`, or `alpha / sqrt(r)` with rsLoRA. */
export function scaling(o: Pick<LoraOptions, 'alpha' | 'r' | 'rsLoRA'>): number {
  return o.rsLoRA ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r;
}
