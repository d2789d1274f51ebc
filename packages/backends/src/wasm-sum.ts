import type { TensorInfo } from '@tensorflow/tfjs-core';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernel';

/**
 * tfjs 4.22's wasm `Sum` reduces only innermost axes, so a sum over the leading ones (every bias
 * and layer-norm gradient: [tokens, width] -> [width]) first transposes the whole input: 11 ms
 * for 4,096 x 256, 45 ms for 4,096 x 1,024 here. Adding rows into one accumulator is one pass (float64
 * accumulation, so at least as exact). Other reductions keep tfjs's kernel.
 */
export function installWasmLeadingSum(): void {
  replaceWasmKernel('Sum', '@deltatune/backends/wasm-sum', (original) => (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { x: TensorInfo };
      backend: WasmBackend;
      attrs: { axis: number | number[]; keepDims: boolean };
    };
    const { x } = inputs;
    const rank = x.shape.length;
    const axes = (Array.isArray(attrs.axis) ? attrs.axis : [attrs.axis]).map((a) => (a < 0 ? a + rank : a)).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading) return original(args);
    const rows = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const kept = x.shape.slice(axes.length);
    const width = kept.reduce((a, b) => a * b, 1);
    const out = backend.makeOutput(attrs.keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
    const acc = new Float64Array(width);
    const values = backend.typedArrayFromHeap(x);
    for (let r = 0; r < rows; r++) {
      const at = r * width;
      for (let j = 0; j < width; j++) acc[j] += values[at + j];
    }
    backend.typedArrayFromHeap(out).set(acc);
    return out;
  });
}
