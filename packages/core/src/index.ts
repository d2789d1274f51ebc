// The contracts of delta tuning and the ops methods and backbones compute with. Importing this
// module registers nothing: fused kernels (@deltatune/kernels), tfjs gradients and backend
// selection (@deltatune/backends) live in their own packages.
export { CORE_VERSION } from './version';
export { DeltaTuneError } from './errors';
export type { Site, SiteKind, SiteOfKind, LinearSite, SublayerSite, AttentionSite, EmbeddingsSite, NormSite } from './sites';
export { siteDimensions } from './sites';
export { HookRegistry } from './hooks';
export type {
  PassContext,
  LinearHook,
  SublayerHook,
  AttentionHook,
  AttentionExtra,
  EmbeddingsHook,
  NormHook,
  HookByKind,
  HookOptions,
} from './hooks';
export type { Backbone, BackboneInputs, BackboneOutputs } from './backbone';
export { runLinear, runSublayer, runAttention, runEmbeddings, runNorm, denseLastAxis } from './run-hooks';
export { selectSites, compilePattern, closestNames, PEFT_DEFAULT_TARGETS } from './targeting';
export type { TargetPattern, Targeting } from './targeting';
export type { Delta, DeltaSpec, DeltaState, DeltaMethod } from './method';
export { registerMethod, unregisterMethod, getMethod, findMethodByPeftType, listMethods } from './method-registry';
export { attach, attachedDeltas, defineDelta, uniqueDeltaName } from './delta';
export { snapshotWeights } from './weights';
export type { WeightSnapshot } from './weights';
export type { DeltaParts } from './delta';
export { countParameters, structureTree } from './accounting';
export type { ParameterReport, DeltaCount } from './accounting';
export { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors';
export type { RawTensor, TensorToWrite, SafetensorsDtype } from './safetensors';
export { encodeCheckpoint, encodeDelta, decodeCheckpoint, validateTensors, assertFinite, CONFIG_FILE, WEIGHTS_FILE } from './checkpoint';
export type { CheckpointFiles, DeltaFileExtras } from './checkpoint';
export { createRng, uniform, normal, kaimingUniform, permutation } from './random';
export type { Rng } from './random';
export { ownedVariable } from './variables';
export { addMany } from './sum';
export { defineOptions, option, TARGETING_OPTIONS } from './option-schema';
export type { OptionSchema, OptionField, OptionsOf, OptionRow } from './option-schema';
export type { OptionType, NumberKind } from './options';
export * as configFields from './config-fields';
// Ops: plain tfjs, dispatching to a registered fused kernel when the active backend has one.
export { dense, lowRankUpdate } from './ops/dense';
export { layerNorm, gelu } from './ops/layer-norm';
export type { GeluForm } from './ops/layer-norm';
export { attentionScores, attentionContext, attentionSoftmax, attentionBias, splitHeads, mergeHeads } from './ops/attention';
export type { AttentionMasking } from './ops/attention';
export { FUSED_KERNELS, setFusedKernels, fusedKernelsEnabled, useFused, runFused } from './ops/fused';
