import { type DeltaMethod, configFields } from '@deltatune/core';
import { PREFIX_OPTIONS, PROMPT_OPTIONS } from './options';
import { prefixTuning, PREFIX_VERSION, type PrefixTuningOptions } from './prefix';
import { CORE_RANGE, promptTuning, PROMPT_VERSION, type PromptTuningOptions } from './prompt';

const { bool, configObject, fieldError, num, oneOf, requiredNum, strings } = configFields;

/**
 * The PEFT fields both prompt-learning configs share, checked so a hand-edited or foreign file fails
 * here, naming the field, rather than as a shape mismatch or NaN later. Returns the token count.
 */
function readPromptLearning(config: Record<string, unknown>, kind: string): number {
  const n = num(config, 'num_transformer_submodules', 'positiveInteger');
  if (n !== undefined && n !== 1) {
    throw fieldError(
      'num_transformer_submodules',
      `is ${n}: PEFT ${kind} for encoder-decoder models is not supported`,
      'use a decoder-only or encoder-only backbone (BERT, RoBERTa, GPT-2, USE-lite)',
    );
  }
  // Not read to build the delta (the tensors' shapes are checked against the backbone), but a
  // wrong value means the file is not what it claims.
  for (const key of ['token_dim', 'num_attention_heads', 'num_layers']) num(config, key, 'positiveInteger');
  return requiredNum(config, 'num_virtual_tokens', 'positiveInteger');
}

export const promptMethod: DeltaMethod<PromptTuningOptions> = {
  name: 'prompt',
  version: PROMPT_VERSION,
  coreRange: CORE_RANGE,
  packageName: '@deltatune/prefix',
  peftType: 'PROMPT_TUNING',
  description: 'Prompt tuning (Lester et al. 2021): virtualTokens * hidden parameters, prepended at the embeddings',
  create: (options) => promptTuning(options),
  options: PROMPT_OPTIONS,
  fromConfig: (raw) => {
    const config = configObject(raw);
    const virtualTokens = readPromptLearning(config, 'PROMPT_TUNING');
    oneOf(config, 'prompt_tuning_init', ['RANDOM', 'SAMPLE_VOCAB', 'TEXT']);
    if (
      config.prompt_tuning_init_text !== undefined &&
      config.prompt_tuning_init_text !== null &&
      typeof config.prompt_tuning_init_text !== 'string'
    ) {
      throw fieldError('prompt_tuning_init_text', 'is not a string', 'set "prompt_tuning_init_text" to the text, or null');
    }
    // The saved embeddings replace the initial ones, so how they started does not matter here.
    return promptTuning({ virtualTokens, init: 'random' });
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
  options: PREFIX_OPTIONS,
  fromConfig: (raw) => {
    const config = configObject(raw);
    const virtualTokens = readPromptLearning(config, 'PREFIX_TUNING');
    num(config, 'encoder_hidden_size', 'positiveInteger');
    // PEFT saves the projected table either way, so the flag only needs to be a flag.
    bool(config, 'prefix_projection');
    bool(config, 'deltatune_trained_with_projection');
    const sites = strings(config, 'attention_sites');
    if (sites?.length === 0)
      throw fieldError('attention_sites', 'is an empty list', 'remove "attention_sites" (every attention layer), or list the sites');
    // A saved table is what the attention reads; a projection MLP (if training used one) is not saved.
    return prefixTuning({ virtualTokens, projection: false, targets: sites });
  },
};
