// Delta training differentiates through tfjs ops: register their gradients once, with core.
import './gradients';

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
export { selectSites, compilePattern, closestNames, editDistance } from './targeting';
export type { TargetPattern, Targeting } from './targeting';
export type { Delta, DeltaSpec, DeltaState, DeltaMethod } from './method';
export { registerMethod, unregisterMethod, getMethod, findMethodByPeftType, listMethods, checkCompatible } from './method-registry';
export { satisfies } from './semver';
export { attach, attachedDeltas, defineDelta, uniqueDeltaName } from './delta';
export type { DeltaParts } from './delta';
export { countParameters, structureTree } from './accounting';
export type { ParameterReport, DeltaCount } from './accounting';
export { readSafetensors, readSafetensorsHeader, writeSafetensors } from './safetensors';
export type { RawTensor, TensorToWrite, SafetensorsDtype } from './safetensors';
export { encodeCheckpoint, decodeCheckpoint, validateTensors, assertFinite, CONFIG_FILE, WEIGHTS_FILE } from './checkpoint';
export type { CheckpointFiles } from './checkpoint';
export { createRng, uniform, normal, kaimingUniform, permutation } from './random';
export { ownedVariable } from './variables';
export { addMany } from './sum';
export { lowMemoryVariableGrads } from './low-memory-grads';
export type { Rng } from './random';
export { selectBackend, BACKENDS } from './backend';
export { installWasmMatMul } from './wasm-matmul';
export { installWasmUnsortedSegmentSum } from './wasm-segment-sum';
export type { BackendChoice, PackageLoader } from './backend';
export { parseOptionValue, parseOptions } from './options';
export * as configFields from './config-fields';
export {
  layerNorm,
  layerNormReference,
  gelu,
  geluReference,
  attentionSoftmax,
  attentionSoftmaxReference,
  attentionBias,
  attentionScores,
  attentionContext,
  attentionScoresReference,
  attentionContextReference,
  splitHeads,
  mergeHeads,
  ATTENTION_SCORES,
  ATTENTION_CONTEXT,
  sumOfSquares,
  dense,
  lowRankUpdate,
  lowRankUpdateReference,
  DENSE,
  LOW_RANK_UPDATE,
  adamwMoment,
  adamwParam,
  setFusedKernels,
  fusedKernelsEnabled,
  useFused,
  LAYER_NORM,
  ADD_LAYER_NORM,
  LAYER_NORM_GRAD,
  GELU,
  GELU_GRAD,
  ATTENTION_SOFTMAX,
  ATTENTION_SOFTMAX_GRAD,
  SUM_OF_SQUARES,
  ADAMW_MOMENT,
  ADAMW_PARAM,
} from './fused';
export type { GeluForm, AttentionMasking, AdamWStep } from './fused';
