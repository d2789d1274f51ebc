import type { TensorInfo } from '@tensorflow/tfjs-core';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernel';

/**
 * While a gradient tape records, tfjs saves each kernel's inputs and outputs for the backward pass
 * through `Identity`, and tfjs 4.22's wasm `Identity` copies the tensor: ~660 copies per BERT-small
 * LoRA step (130 ms of 2.6 s). Tensors are immutable, so the copy can share the data instead, as
 * the cpu backend's Identity and wasm's own Reshape already do (a reference count, no copy).
 */
export function installWasmIdentity(): void {
  replaceWasmKernel('Identity', '@deltatune/backends/wasm-identity', (original) => (args) => {
    const { inputs, backend } = args as unknown as { inputs: { x: TensorInfo }; backend: WasmBackend };
    const { x } = inputs;
    if (x.dtype === 'string') return original(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
}
