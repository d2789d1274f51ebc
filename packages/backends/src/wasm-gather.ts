import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

const PATCHED = Symbol.for('@deltatune/backends/wasm-gather');

interface WasmBackend {
  readSync(dataId: object): ArrayLike<number>;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array;
}

/**
 * An embedding lookup (`gather` of rows, axis 0) on tfjs 4.22's wasm backend runs ~30 ns per
 * element: 30 ms for 4,096 rows of 256, three lookups per BERT step. Copying whole rows is a
 * memcpy each (~1 ms for the same lookup). Other gathers (another axis, batch dimensions, an index
 * out of range, which tfjs reports) keep tfjs's kernel.
 */
export function installWasmGather(): void {
  const g = globalThis as Record<symbol, boolean>;
  if (g[PATCHED]) return;
  const original = tf.getKernel('GatherV2', 'wasm');
  if (!original) return;
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { x: TensorInfo; indices: TensorInfo };
      backend: WasmBackend;
      attrs: { axis: number; batchDims: number };
    };
    const { x, indices } = inputs;
    if (attrs.axis !== 0 || attrs.batchDims !== 0 || (x.dtype !== 'float32' && x.dtype !== 'int32') || x.shape.length < 1)
      return original.kernelFunc(args);
    const rows = x.shape[0];
    const width = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const ids = backend.readSync(indices.dataId);
    for (let i = 0; i < ids.length; i++) if (!(ids[i] >= 0 && ids[i] < rows)) return original.kernelFunc(args);
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    // Views after the allocation: growing the wasm heap detaches views taken before it.
    const table = backend.typedArrayFromHeap(x);
    const values = backend.typedArrayFromHeap(out);
    const idx = backend.readSync(indices.dataId);
    for (let i = 0; i < idx.length; i++) values.set(table.subarray(idx[i] * width, (idx[i] + 1) * width), i * width);
    return out;
  };
  tf.unregisterKernel('GatherV2', 'wasm');
  tf.registerKernel({ ...(original as KernelConfig), kernelFunc });
  g[PATCHED] = true;
}
