import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackend } from './wasm-kernel';

/**
 * tfjs 4.22's wasm backend has no `UnsortedSegmentSum`, the kernel behind the gradient of
 * `gather` with respect to the gathered table: without it, full fine-tuning (which trains the
 * embedding table) fails on wasm. This fills the gap with a plain loop on the wasm heap.
 */
export function installWasmUnsortedSegmentSum(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  const kernelFunc: KernelFunc = (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { x: TensorInfo; segmentIds: TensorInfo };
      backend: WasmBackend;
      attrs: { numSegments: number };
    };
    const { x, segmentIds } = inputs;
    const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
    const rest = x.shape.slice(segmentIds.shape.length);
    const width = rest.reduce((a, b) => a * b, 1);
    const out = backend.makeOutput([attrs.numSegments, ...rest], x.dtype);
    const values = backend.typedArrayFromHeap(out);
    values.fill(0);
    const xs = backend.readSync(x.dataId);
    const ids = backend.readSync(segmentIds.dataId);
    for (let i = 0; i < rows; i++) {
      const row = ids[i];
      if (row < 0 || row >= attrs.numSegments) continue;
      const src = i * width;
      const dst = row * width;
      for (let j = 0; j < width; j++) values[dst + j] += xs[src + j];
    }
    return out;
  };
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc });
}
