import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS } from '@deltatune/core';
import type { NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import {
  elementwiseProgram,
  f32,
  i32,
  registerGradientOnce,
  registerWebgpuAndCpu,
  type CpuBackendLike,
  type KernelArgs,
  type WebGpuBackendLike,
  type WebGpuProgram,
} from './program';

/**
 * `y + s * h B` for a low-rank `h` `[m, r]` and `B` `[r, n]` (LoRA's update, r = 4..64): one
 * kernel, each output summing r products, instead of matmul, scale and add. Its gradients are the
 * same kernel transposed: dh = s dY B^T (a sum over n, r outputs per row) and dB = s h^T dY (a
 * sum over all m rows of the batch, into only r x n outputs). Meant for low-rank shapes only: the
 * forward and dh loop per output over the inner dimension (r, or n with r outputs sharing each
 * row); dB splits its long sum over the threads of a workgroup (see `sumOverRowsProgram`).
 */
const LOW_RANK_UPDATE = FUSED_KERNELS.lowRankUpdate;

interface LowRankAttrs {
  scale: number;
  transposeA: boolean;
  transposeB: boolean;
}

function scaledProduct(a: Tensor, b: Tensor, attrs: LowRankAttrs, addend?: Tensor): Tensor {
  const inputs: tf.NamedTensorMap = addend ? { a, b, addend } : { a, b };
  return tf.engine().runKernel(LOW_RANK_UPDATE, inputs, { ...attrs } as unknown as NamedAttrMap) as Tensor;
}

function dims(a: TensorInfo, b: TensorInfo, o: LowRankAttrs) {
  const [m, k] = o.transposeA ? [a.shape[1], a.shape[0]] : a.shape;
  const n = o.transposeB ? b.shape[0] : b.shape[1];
  return { m, k, n };
}

const SUM_COLUMNS = 8;
const SUM_LANES = 32;

/**
 * `scale * h^T g` for `h` `[k, m]` (m = r, small) and `g` `[k, n]`, k = batch x sequence rows:
 * LoRA's dB. One output per thread looping over all k rows left most of a GPU idle (r x n = 6,144
 * threads for BERT-base's r = 8) with k = 4,096 sequential reads each. Here a workgroup takes 8
 * columns of g; its 32 lanes per column each sum every 32nd row (reading 8 adjacent floats of a
 * row together), keeping all r partial sums in registers; then the lanes' partials are added in
 * workgroup memory, one output row at a time.
 */
function sumOverRowsProgram(r: number, blocks: number, n: number): WebGpuProgram {
  const threads = SUM_COLUMNS * SUM_LANES;
  return {
    variableNames: ['a', 'b'],
    outputShape: [r, n],
    shaderKey: `deltatune_low_rank_tn_${r}`,
    label: 'deltatune_low_rank_tn',
    dispatchLayout: { x: [0, 1] },
    dispatch: [blocks, 1, 1],
    workgroupSize: [threads, 1, 1],
    uniforms: 'm : i32, k : i32, n : i32, scale : f32, blocks : i32,',
    getUserCode: () => `
      const R = ${r};
      var<workgroup> partial : array<f32, ${threads}>;
      fn main(index : i32) {
        let tid = i32(localId.x);
        let block = min(index / ${threads}, uniforms.blocks - 1);
        let column = tid % ${SUM_COLUMNS};
        let lane = tid / ${SUM_COLUMNS};
        let c = block * ${SUM_COLUMNS} + column;
        var acc : array<f32, R>;
        if (c < uniforms.n) {
          for (var row = lane; row < uniforms.k; row = row + ${SUM_LANES}) {
            let g = b[row * uniforms.n + c];
            for (var j = 0; j < R; j = j + 1) { acc[j] = acc[j] + a[row * R + j] * g; }
          }
        }
        for (var j = 0; j < R; j = j + 1) {
          partial[tid] = acc[j];
          workgroupBarrier();
          for (var stride = ${SUM_LANES / 2}; stride > 0; stride = stride / 2) {
            if (lane < stride) { partial[tid] = partial[tid] + partial[tid + stride * ${SUM_COLUMNS}]; }
            workgroupBarrier();
          }
          if (lane == 0 && c < uniforms.n) { setOutputAtIndex(j * uniforms.n + c, uniforms.scale * partial[column]); }
          workgroupBarrier();
        }
      }`,
  };
}

function webgpu({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const o = attrs as unknown as LowRankAttrs;
  const { m, k, n } = dims(inputs.a, inputs.b, o);
  const uniforms = [i32(m), i32(k), i32(n), f32(o.scale)];
  if (o.transposeA && !o.transposeB && !inputs.addend) {
    const blocks = Math.ceil(n / SUM_COLUMNS);
    return (backend as WebGpuBackendLike).runWebGPUProgram(sumOverRowsProgram(m, blocks, n), [inputs.a, inputs.b], 'float32', [
      ...uniforms,
      i32(blocks),
    ]);
  }
  const aIndex = o.transposeA ? 't * uniforms.m + row' : 'row * uniforms.k + t';
  const bIndex = o.transposeB ? 'col * uniforms.k + t' : 't * uniforms.n + col';
  const body = `
    let row = index / uniforms.n;
    let col = index % uniforms.n;
    var sum = 0.0;
    for (var t = 0; t < uniforms.k; t = t + 1) { sum = sum + a[${aIndex}] * b[${bIndex}]; }
    setOutputAtIndex(index, ${inputs.addend ? 'addend[index] + ' : ''}uniforms.scale * sum);`;
  const names = inputs.addend ? ['a', 'b', 'addend'] : ['a', 'b'];
  const key = `low_rank_${o.transposeA ? 't' : 'n'}${o.transposeB ? 't' : 'n'}${inputs.addend ? '_add' : ''}`;
  const program = elementwiseProgram(key, names, [m, n], body, 'm : i32, k : i32, n : i32, scale : f32,');
  return (backend as WebGpuBackendLike).runWebGPUProgram(
    program,
    names.map((x) => inputs[x]),
    'float32',
    uniforms,
  );
}

function cpu({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const be = backend as CpuBackendLike;
  const o = attrs as unknown as LowRankAttrs;
  const { m, k, n } = dims(inputs.a, inputs.b, o);
  const [a, b] = [be.data.get(inputs.a.dataId).values, be.data.get(inputs.b.dataId).values];
  const addend = inputs.addend ? be.data.get(inputs.addend.dataId).values : undefined;
  const out = new Float32Array(m * n);
  for (let row = 0; row < m; row++)
    for (let col = 0; col < n; col++) {
      let sum = 0;
      for (let t = 0; t < k; t++) sum += a[o.transposeA ? t * m + row : row * k + t] * b[o.transposeB ? col * k + t : t * n + col];
      out[row * n + col] = (addend ? addend[row * n + col] : 0) + o.scale * sum;
    }
  return be.makeTensorInfo([m, n], 'float32', out);
}

export function registerLowRank(): void {
  registerWebgpuAndCpu(LOW_RANK_UPDATE, webgpu, cpu);
  registerGradientOnce({
    kernelName: LOW_RANK_UPDATE,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => {
      const o = attrs as unknown as LowRankAttrs;
      if (o.transposeA || o.transposeB) throw new Error(`${LOW_RANK_UPDATE}: only the untransposed product is differentiable`);
      return {
        a: () => scaledProduct(dy as Tensor, b, { scale: o.scale, transposeA: false, transposeB: true }),
        b: () => scaledProduct(a, dy as Tensor, { scale: o.scale, transposeA: true, transposeB: false }),
        addend: () => tf.reshape(dy as Tensor, (dy as Tensor).shape),
      };
    },
  });
}
