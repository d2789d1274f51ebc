import { registerAdamW } from './adamw';
import { registerAttentionMatmul } from './attention-matmul';
import { registerAttentionSoftmax } from './attention-softmax';
import { registerDense } from './dense';
import { registerLowRank } from './low-rank';
import { registerGelu } from './gelu';
import { registerLayerNorm } from './layer-norm';

// Kernels are registered by name for the `webgpu` and `cpu` backends; registering needs neither
// backend to be loaded. Other backends (wasm, tensorflow) run the plain-ops references.
registerLayerNorm();
registerGelu();
registerAttentionSoftmax();
registerAttentionMatmul();
registerAdamW();
registerDense();
registerLowRank();

export { layerNorm, layerNormReference, LAYER_NORM, ADD_LAYER_NORM, LAYER_NORM_GRAD } from './layer-norm';
export { gelu, geluReference, GELU, GELU_GRAD, type GeluForm } from './gelu';
export { attentionSoftmax, attentionSoftmaxReference, attentionBias, ATTENTION_SOFTMAX, ATTENTION_SOFTMAX_GRAD, type AttentionMasking } from './attention-softmax';
export { attentionScores, attentionContext, attentionScoresReference, attentionContextReference, splitHeads, mergeHeads, ATTENTION_SCORES, ATTENTION_CONTEXT } from './attention-matmul';
export { sumOfSquares, adamwMoment, adamwParam, SUM_OF_SQUARES, ADAMW_MOMENT, ADAMW_PARAM, type AdamWStep } from './adamw';
export { dense, DENSE } from './dense';
export { lowRankUpdate, lowRankUpdateReference, LOW_RANK_UPDATE } from './low-rank';
export { setFusedKernels, fusedKernelsEnabled, useFused } from './program';
