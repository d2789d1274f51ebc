import type { TensorInfo } from '@tensorflow/tfjs-core';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernel';

/**
 * An embedding lookup (`gather` of rows, axis 0) on tfjs 4.22's wasm backend runs ~30 ns per
 * element: 30 ms for 4,096 rows of 256, three lookups per BERT step. Copying whole rows is a
 * memcpy each (~1 ms for the same lookup). Other gathers (another axis, batch dimensions, an index
 * out of range, which tfjs reports) keep tfjs's kernel.
 */
export function installWasmGather(): void {
  replaceWasmKernel('GatherV2', '@deltatune/backends/wasm-gather', (original) => (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { x: TensorInfo; indices: TensorInfo };
      backend: WasmBackend;
      attrs: { axis: number; batchDims: number };
    };
    const { x, indices } = inputs;
    if (attrs.axis !== 0 || attrs.batchDims !== 0 || (x.dtype !== 'float32' && x.dtype !== 'int32') || x.shape.length < 1)
      return original(args);
    const rows = x.shape[0];
    const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const ids = backend.readSync(indices.dataId);
    for (let i = 0; i < ids.length; i++) if (!(ids[i] >= 0 && ids[i] < rows)) return original(args);
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    // Views after the allocation: growing the wasm heap detaches views taken before it (`ids` is a copy).
    const table = backend.typedArrayFromHeap(x);
    const values = backend.typedArrayFromHeap(out);
    for (let i = 0; i < ids.length; i++) values.set(table.subarray(ids[i] * width, (ids[i] + 1) * width), i * width);
    return out;
  });
}
