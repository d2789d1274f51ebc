import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { replaceWasmKernel, type WasmBackend } from './wasm-kernel';

/**
 * tfjs 4.22's wasm `BatchMatMul` is fast only for one plain 2D product (XNNPACK's fully-connected
 * operator, ~31 GFLOP/s here). Two cases fall off it, and a training step is full of both:
 * - a transposed operand: 12-30x slower (2048x512x1536: 86 ms plain, 1,074 ms with transposeB,
 *   2,798 ms with transposeA), and every dense layer's backward pass asks for one;
 * - a batch of products (attention: batch x heads of 128x64 @ 64x128): its own loop runs at
 *   ~3 GFLOP/s (128 products of 128x64x128: 92-99 ms batched, 11 ms as 128 plain 2D products).
 * This kernel transposes an operand explicitly (one pass over memory) and runs every product as
 * plain 2D ones, each batch item copied into and out of a 2D tensor (a pass over memory each,
 * cheap beside the arithmetic). Same products, so results agree to float rounding.
 */
export function installWasmMatMul(): void {
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!transpose) return;
  replaceWasmKernel('BatchMatMul', '@deltatune/core/wasm-matmul', (original) => (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { a: TensorInfo; b: TensorInfo };
      backend: WasmBackend;
      attrs: { transposeA: boolean; transposeB: boolean };
    };
    const { a, b } = inputs;
    const batchA = a.shape.slice(0, -2);
    const batchB = b.shape.slice(0, -2);
    const count = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
    const [nA, nB] = [count(batchA), count(batchB)];
    // Broadcasting other than one side's single item (rare, never in a step) keeps tfjs's path.
    const sameBatch = nA === nB && batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || !(sameBatch || nA === 1 || nB === 1)) return original(args);
    if (!(attrs.transposeA || attrs.transposeB) && nA === 1 && nB === 1) return original(args);

    const flip = (t: TensorInfo): TensorInfo => {
      const perm = t.shape.map((_, i) => i);
      [perm[perm.length - 2], perm[perm.length - 1]] = [perm[perm.length - 1], perm[perm.length - 2]];
      return transpose.kernelFunc({ inputs: { x: t }, backend, attrs: { perm } } as never) as TensorInfo;
    };
    const a2 = attrs.transposeA ? flip(a) : a;
    const b2 = attrs.transposeB ? flip(b) : b;
    const plain = (x: TensorInfo, y: TensorInfo) =>
      original({
        ...args,
        inputs: { a: x, b: y },
        attrs: { ...attrs, transposeA: false, transposeB: false },
      } as never) as TensorInfo;
    let out: TensorInfo;
    if (nA === 1 && nB === 1) out = plain(a2, b2);
    else {
      const [m, k] = a2.shape.slice(-2);
      const n = b2.shape[b2.shape.length - 1];
      const batch = nA > 1 ? batchA : batchB;
      out = backend.makeOutput([...batch, m, n], 'float32');
      // The 2D item `i` of a batched operand (the operand itself when it has one item).
      const item = (t: TensorInfo, rows: number, cols: number, items: number, i: number): TensorInfo => {
        if (items === 1) return t.shape.length === 2 ? t : { ...t, shape: [rows, cols] };
        const x = backend.makeOutput([rows, cols], 'float32');
        // Views are taken after each allocation: one that grows the wasm heap detaches older views.
        backend.typedArrayFromHeap(x).set(backend.typedArrayFromHeap(t).subarray(i * rows * cols, (i + 1) * rows * cols));
        return x;
      };
      for (let i = 0; i < Math.max(nA, nB); i++) {
        const ai = item(a2, m, k, nA, i);
        const bi = item(b2, k, n, nB, i);
        const oi = plain(ai, bi);
        backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(oi), i * m * n);
        backend.disposeData(oi.dataId);
        if (ai.dataId !== a2.dataId) backend.disposeData(ai.dataId);
        if (bi.dataId !== b2.dataId) backend.disposeData(bi.dataId);
      }
    }
    if (a2 !== a) backend.disposeData(a2.dataId);
    if (b2 !== b) backend.disposeData(b2.dataId);
    return out;
  });
}
