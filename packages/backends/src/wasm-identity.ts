import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

const PATCHED = Symbol.for('@deltatune/backends/wasm-identity');

/**
 * While a gradient tape records, tfjs saves each kernel's inputs and outputs for the backward pass
 * through `Identity`, and tfjs 4.22's wasm `Identity` copies the tensor: ~660 copies per BERT-small
 * LoRA step (130 ms of 2.6 s). Tensors are immutable, so the copy can share the data instead, as
 * the cpu backend's Identity and wasm's own Reshape already do (a reference count, no copy).
 */
export function installWasmIdentity(): void {
  const g = globalThis as Record<symbol, boolean>;
  if (g[PATCHED]) return;
  const original = tf.getKernel('Identity', 'wasm');
  if (!original) return;
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend } = args as unknown as { inputs: { x: TensorInfo }; backend: { incRef(dataId: object): void } };
    const { x } = inputs;
    if (x.dtype === 'string') return original.kernelFunc(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ ...(original as KernelConfig), kernelFunc });
  g[PATCHED] = true;
}
