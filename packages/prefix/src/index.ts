export { promptTuning, promptParameterCount, PROMPT_DEFAULTS, PROMPT_VERSION } from './prompt';
export type { PromptTuningOptions } from './prompt';
export { prefixTuning, prefixParameterCount, PREFIX_DEFAULTS, PREFIX_VERSION } from './prefix';
export type { PrefixTuningOptions } from './prefix';
export { promptMethod, prefixMethod } from './method';
export { PROMPT_OPTIONS, PREFIX_OPTIONS } from './options';
