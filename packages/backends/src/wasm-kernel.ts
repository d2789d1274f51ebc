import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

/** The part of tfjs's wasm backend that its own kernels (Slice, Reshape) use, and ours with them. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  /** A view of a tensor's data on the wasm heap: take it after any allocation (growing the heap detaches older views). */
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array;
  /** A copy of a tensor's data. */
  readSync(dataId: object): ArrayLike<number>;
  incRef(dataId: object): void;
  disposeData(dataId: object): void;
}

/**
 * Replaces tfjs's wasm kernel `kernelName` with `make(original)`, which falls back to `original`
 * for the cases it does not take. Once per process: `mark` (a `Symbol.for` key) tells a second copy
 * of this package, or a second backend start, that it is done.
 */
export function replaceWasmKernel(kernelName: string, mark: string, make: (original: KernelFunc) => KernelFunc): void {
  const g = globalThis as Record<symbol, boolean>;
  const key = Symbol.for(mark);
  if (g[key]) return;
  const original = tf.getKernel(kernelName, 'wasm');
  if (!original) return;
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ ...(original as KernelConfig), kernelFunc: make(original.kernelFunc) });
  g[key] = true;
}
