export { lora, loraFactors, loraParameterFormula, LORA_VERSION } from './lora';
export type { LoraFactors } from './lora';
export { dora } from './dora';
export { doraWeight, columnNorm } from './dora-math';
export { loraMethod, doraMethod } from './method';
export { LORA_OPTIONS, LORA_DEFAULTS, DEFAULT_TARGETS, scaling } from './options';
export type { LoraOptions } from './options';
export { optionsFromPeft, configToPeft, peftKey } from './peft';
