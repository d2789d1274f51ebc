import { defineOptions, option, TARGETING_OPTIONS, type OptionsOf } from '@deltatune/core';

/** What LoHa and LoKr share, as PEFT's LycorisConfig does. */
const LYCORIS_FIELDS = {
  r: option('positiveInteger', 'rank of each low-rank factor pair', 8),
  alpha: option('finite', 'scaling numerator: the update is multiplied by alpha / r', 8),
  rankDropout: option('probability', 'in training, zero each output feature of the update with this probability (PEFT rank_dropout)', 0),
  moduleDropout: option('probability', "in training, skip a layer's whole update with this probability (PEFT module_dropout)", 0),
  seed: option('integer', 'seed of the initial values', 0),
  ...TARGETING_OPTIONS,
} as const;

/** LoHa's options, declared once: the type, the `--opt` parser, the checks and the help text. */
export const LOHA_OPTIONS = defineOptions('loha', {
  ...LYCORIS_FIELDS,
  init: option(
    ['default', 'random'],
    "default: w1_a, w1_b, w2_a Kaiming-uniform and w2_b zero (PEFT's init_weights: true; an untrained LoHa changes nothing); random: all four random",
    'default',
  ),
});

export type LohaOptions = OptionsOf<typeof LOHA_OPTIONS>;

/** LoKr's options: LyCORIS's plus how the Kronecker factors are shaped. */
export const LOKR_OPTIONS = defineOptions('lokr', {
  ...LYCORIS_FIELDS,
  decomposeFactor: option(
    'integer',
    'split each dimension as factor x (dimension / factor); -1 picks the divisor pair nearest the square root (PEFT decompose_factor)',
    -1,
  ),
  decomposeBoth: option(
    'boolean',
    'also write w1 as w1_a w1_b when r < max(its sides) / 2 (PEFT decompose_both); w2 is low-rank exactly when r < max(its sides) / 2',
    false,
  ),
  rankDropoutScale: option('boolean', 'divide the kept features by the fraction kept under rank dropout (PEFT rank_dropout_scale)', false),
  init: option(
    ['default', 'lycoris', 'random'],
    'default: w1 zero, w2 Kaiming-uniform (PEFT\'s init_weights: true); lycoris: w1 random, w2 (or w2_b) zero (init_weights: "lycoris"); random: all random',
    'default',
  ),
});

export type LokrOptions = OptionsOf<typeof LOKR_OPTIONS>;

/** The factor on the update: `alpha / r`, for both methods (PEFT's `scaling`). */
export function scaling(o: { alpha: number; r: number }): number {
  return o.alpha / o.r;
}
