import * as tf from '@tensorflow/tfjs-core';

/**
 * The names deltatune's ops dispatch under: the contract between an op here and the fused kernel
 * a kernel package registers for it (`@deltatune/kernels` does, for webgpu and cpu). With no
 * kernel registered for the active backend, an op runs as plain tfjs ops, which is also the
 * reference every fused kernel is tested against.
 */
export const FUSED_KERNELS = {
  dense: 'DeltatuneDense',
  lowRankUpdate: 'DeltatuneLowRankUpdate',
  layerNorm: 'DeltatuneLayerNorm',
  /** Layer norm of `x + residual`: its own name, so each kernel has a fixed gradient signature. */
  addLayerNorm: 'DeltatuneAddLayerNorm',
  gelu: 'DeltatuneGelu',
  attentionSoftmax: 'DeltatuneAttentionSoftmax',
  attentionScores: 'DeltatuneAttentionScores',
  attentionContext: 'DeltatuneAttentionContext',
  sumOfSquares: 'DeltatuneSumOfSquares',
  adamwMoment: 'DeltatuneAdamWMoment',
  adamwParam: 'DeltatuneAdamWParam',
} as const;

let fusedEnabled = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DELTATUNE_FUSED !== '0';

/**
 * Turns dispatch to fused kernels on or off (on by default; `DELTATUNE_FUSED=0` starts it off).
 * Off, every op runs as plain tfjs ops: the reference the fused kernels are tested and benchmarked
 * against.
 */
export function setFusedKernels(enabled: boolean): void {
  fusedEnabled = enabled;
}

export function fusedKernelsEnabled(): boolean {
  return fusedEnabled;
}

/** Whether `kernelName` runs fused on the active backend now (a kernel is registered for it). */
export function useFused(kernelName: string): boolean {
  return fusedEnabled && tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

/** Runs the registered kernel `name` (the op has already checked `useFused`). */
export function runFused(name: string, inputs: tf.NamedTensorMap, attrs: object = {}): tf.Tensor {
  return tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}
