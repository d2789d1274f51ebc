import { DeltaTuneError, parseOptions, type DeltaMethod } from '@deltatune/core';
import { prefixTuning, PREFIX_VERSION, type PrefixTuningOptions } from './prefix';
import { CORE_RANGE, promptTuning, PROMPT_VERSION, type PromptTuningOptions } from './prompt';

function checkSubmodules(config: Record<string, unknown>, kind: string): void {
  const n = config.num_transformer_submodules;
  if (n !== undefined && n !== null && n !== 1) {
    throw new DeltaTuneError(`PEFT ${kind} with num_transformer_submodules=${n} (encoder-decoder models) is not supported`, 'use a decoder-only or encoder-only backbone (BERT, RoBERTa, GPT-2, USE-lite)');
  }
}

export const promptMethod: DeltaMethod<PromptTuningOptions> = {
  name: 'prompt',
  version: PROMPT_VERSION,
  coreRange: CORE_RANGE,
  packageName: '@deltatune/prefix',
  peftType: 'PROMPT_TUNING',
  description: 'Prompt tuning (Lester et al. 2021): virtualTokens * hidden parameters, prepended at the embeddings',
  create: (options) => promptTuning(options),
  parseOptions: (raw) => parseOptions<PromptTuningOptions>('prompt', raw, { virtualTokens: 'number', init: 'string', initText: 'string', initTokenIds: 'any', seed: 'number' }),
  fromConfig: (config) => {
    checkSubmodules(config, 'PROMPT_TUNING');
    return promptTuning({ virtualTokens: config.num_virtual_tokens as number, init: 'random' });
  },
};

export const prefixMethod: DeltaMethod<PrefixTuningOptions> = {
  name: 'prefix',
  version: PREFIX_VERSION,
  coreRange: CORE_RANGE,
  packageName: '@deltatune/prefix',
  peftType: 'PREFIX_TUNING',
  description: 'Prefix tuning (Li & Liang 2021): learned keys/values at every attention; virtualTokens * 2 * width per layer',
  create: (options) => prefixTuning(options),
  parseOptions: (raw) =>
    parseOptions<PrefixTuningOptions>('prefix', raw, { virtualTokens: 'number', projection: 'boolean', projectionHidden: 'number', initStd: 'number', seed: 'number', targets: 'strings', exclude: 'strings', layers: 'any' }),
  fromConfig: (config) => {
    checkSubmodules(config, 'PREFIX_TUNING');
    // A saved table is what the attention reads; a projection MLP (if training used one) is not saved.
    return prefixTuning({ virtualTokens: config.num_virtual_tokens as number, projection: false, targets: (config.attention_sites as string[] | undefined) ?? undefined });
  },
};
