import * as tf from '@tensorflow/tfjs-core';
import type { NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { elementwiseProgram, registerWebgpuAndCpu, useFused, type CpuBackendLike, type KernelArgs, type WebGpuBackendLike } from './program';

/**
 * `y + s * h B` for a low-rank `h` `[m, r]` and `B` `[r, n]` (LoRA's update, r = 4..64): one
 * kernel, each output summing r products, instead of matmul, scale and add. Its gradients are the
 * same kernel transposed: dh = s dY B^T (a sum over n) and dB = s h^T dY (a sum over m). Meant for
 * low-rank shapes only: every output element loops over the inner dimension, no tiling.
 */
export const LOW_RANK_UPDATE = 'DeltatuneLowRankUpdate';

interface LowRankAttrs {
  scale: number;
  transposeA: boolean;
  transposeB: boolean;
}

export function lowRankUpdateReference(y: Tensor, h: Tensor, b: Tensor, scale: number): Tensor {
  return tf.tidy(() => tf.add(y, tf.mul(tf.matMul(h, b), scale)));
}

/** `y + scale * h b`, all 2-D. */
export function lowRankUpdate(y: Tensor, h: Tensor, b: Tensor, scale: number): Tensor {
  if (!useFused(LOW_RANK_UPDATE)) return lowRankUpdateReference(y, h, b, scale);
  return scaledProduct(h, b, { scale, transposeA: false, transposeB: false }, y);
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

function webgpu({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const o = attrs as unknown as LowRankAttrs;
  const { m, k, n } = dims(inputs.a, inputs.b, o);
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
  const uniforms = [
    { type: 'int32' as const, data: [m] },
    { type: 'int32' as const, data: [k] },
    { type: 'int32' as const, data: [n] },
    { type: 'float32' as const, data: [o.scale] },
  ];
  return (backend as WebGpuBackendLike).runWebGPUProgram(program, names.map((x) => inputs[x]), 'float32', uniforms);
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
  tf.registerGradient({
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
