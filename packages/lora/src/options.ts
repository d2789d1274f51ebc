import type { TargetPattern, Targeting } from '@deltatune/core';

export interface LoraOptions extends Targeting {
  /** Rank of the update. */
  readonly r: number;
  /** Scaling numerator: the update is multiplied by `alpha / r` (or `alpha / sqrt(r)` with rsLoRA). */
  readonly alpha: number;
  /** Dropout on the LoRA path's input during training. */
  readonly dropout: number;
  /** Rank-stabilised scaling, `alpha / sqrt(r)` (Kalajdzievski 2023). */
  readonly rsLoRA: boolean;
  /**
   * `kaiming`: A Kaiming-uniform, B zero (PEFT's default; an untrained LoRA changes nothing).
   * `random`: A and B both random (tests: makes the delta non-zero).
   */
  readonly init: 'kaiming' | 'random';
  readonly seed: number;
  /** Which base biases train with the delta, as PEFT: none, every bias, or those of the LoRA-targeted layers. */
  readonly bias: 'none' | 'all' | 'lora_only';
}

export const LORA_DEFAULTS: Omit<LoraOptions, keyof Targeting> = {
  r: 8,
  alpha: 8,
  dropout: 0,
  rsLoRA: false,
  init: 'kaiming',
  seed: 0,
  bias: 'none',
};

/** Targets used when none are given, per architecture (PEFT's defaults where it has them). */
export const DEFAULT_TARGETS: Record<string, readonly TargetPattern[]> = {
  bert: ['query', 'value'],
  roberta: ['query', 'value'],
  'use-lite': ['query', 'value'],
  gpt2: ['c_attn'],
};

export const LORA_OPTION_TYPES = {
  r: 'positiveInteger',
  alpha: 'finite',
  dropout: 'probability',
  rsLoRA: 'boolean',
  init: ['kaiming', 'random'],
  seed: 'integer',
  bias: ['none', 'all', 'lora_only'],
  targets: 'strings',
  exclude: 'strings',
  layers: 'layers',
} as const;

export function scaling(o: Pick<LoraOptions, 'alpha' | 'r' | 'rsLoRA'>): number {
  return o.rsLoRA ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r;
}
