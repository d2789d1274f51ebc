import { registerAdamW } from './adamw';
import { registerAttentionMatmul } from './attention-matmul';
import { registerAttentionSoftmax } from './attention-softmax';
import { registerDense } from './dense';
import { registerGelu } from './gelu';
import { registerLayerNorm } from './layer-norm';
import { registerLowRank } from './low-rank';

/**
 * deltatune's fused kernels, registered on import for the `webgpu` backend (WGSL programs) and the
 * `cpu` backend (their JS twins) under the names in core's `FUSED_KERNELS`; registering needs
 * neither backend to be loaded. Core's ops dispatch to them when present; wasm has only the AdamW
 * ones (JS loops on its heap), and wasm's other ops and tensorflow run the plain-tfjs form, the
 * reference these kernels are tested against.
 */
export function registerFusedKernels(): void {
  registerLayerNorm();
  registerGelu();
  registerAttentionSoftmax();
  registerAttentionMatmul();
  registerAdamW();
  registerDense();
  registerLowRank();
}

registerFusedKernels();

/** Kernels that only gradients run (no op of core dispatches to them), for dispatch counts. */
export { LAYER_NORM_GRAD } from './layer-norm';
export { GELU_GRAD } from './gelu';
export { ATTENTION_SOFTMAX_GRAD } from './attention-softmax';
export type { WebGpuProgram } from './program';
