import { defineOptions, option, TARGETING_OPTIONS, type OptionsOf } from '@deltatune/core';

export const PROMPT_INITS = ['vocab', 'random', 'text'] as const;

/** Prompt tuning's options, declared once: the type, the `--opt` parser, the checks and the help text. */
export const PROMPT_OPTIONS = defineOptions('prompt', {
  virtualTokens: option('positiveInteger', 'learned positions placed in front of the token embeddings', 8),
  init: option(
    PROMPT_INITS,
    'vocab: random rows of the word-embedding table (Lester et al. 2021); random: normal with the table std; ' +
      "text: the embeddings of initTokenIds / initText (PEFT's prompt_tuning_init TEXT)",
    'vocab',
  ),
  initTokenIds: option('indices', 'token ids to start from with init=text (repeated or cut to length)'),
  initText: option('string', "the text the ids come from (the CLI tokenizes it), recorded as PEFT's prompt_tuning_init_text"),
  seed: option('integer', 'seed of the initial values', 0),
});

export type PromptTuningOptions = OptionsOf<typeof PROMPT_OPTIONS>;
export const PROMPT_DEFAULTS = PROMPT_OPTIONS.defaults;

/** Prefix tuning's options. */
export const PREFIX_OPTIONS = defineOptions('prefix', {
  virtualTokens: option('positiveInteger', 'learned key/value positions at every attention site', 8),
  projection: option(
    'boolean',
    "Li & Liang's reparameterisation: an embedding and an MLP that maps it to the keys/values (saving keeps the output, as PEFT)",
    false,
  ),
  projectionHidden: option('positiveInteger', 'hidden width of the projection MLP', 64),
  initStd: option('nonNegative', 'standard deviation of the initial keys/values (no projection)', 0.1),
  seed: option('integer', 'seed of the initial values', 0),
  ...TARGETING_OPTIONS,
});

export type PrefixTuningOptions = OptionsOf<typeof PREFIX_OPTIONS>;
export const PREFIX_DEFAULTS = PREFIX_OPTIONS.defaults;
