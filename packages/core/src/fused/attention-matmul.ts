import * as tf from '@tensorflow/tfjs-core';
import type { NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { elementwiseProgram, registerWebgpuAndCpu, useFused, type CpuBackendLike, type KernelArgs, type WebGpuBackendLike } from './program';

/**
 * The two products of attention, read and written in the `[batch, seq, heads * headDim]` layout
 * the projections produce. Plain ops split heads with a transpose per q, k and v, merge them back
 * with another, and transpose again for every gradient: 8 transposes per layer and step. Here the
 * head split is index arithmetic inside the kernel:
 * - scores `[b, h, sq, sk]` = q_h k_h^T (unscaled: the softmax kernel scales);
 * - context `[b, sq, h * d]` = p_h v_h, or with `transposed`, `[b, sk, h * d]` = p_h^T x_h.
 * Each one's gradient is the other (or itself transposed), so backward needs no new kernels.
 */
export const ATTENTION_SCORES = 'DeltatuneAttentionScores';
export const ATTENTION_CONTEXT = 'DeltatuneAttentionContext';

/** `[b, s, h * d]` -> `[b, h, s, d]`. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, s, width] = x.shape as number[];
  return tf.transpose(tf.reshape(x, [b, s, heads, width / heads]), [0, 2, 1, 3]);
}

/** `[b, h, s, d]` -> `[b, s, h * d]`. */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, s, d] = x.shape as number[];
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, s, h * d]);
}

export function attentionScoresReference(q: Tensor, k: Tensor, heads: number): Tensor {
  return tf.tidy(() => tf.matMul(splitHeads(q, heads), splitHeads(k, heads), false, true));
}

export function attentionContextReference(p: Tensor, v: Tensor, heads: number, transposed = false): Tensor {
  return tf.tidy(() => mergeHeads(tf.matMul(p, splitHeads(v, heads), transposed, false)));
}

export function attentionScores(q: Tensor, k: Tensor, heads: number): Tensor {
  if (!useFused(ATTENTION_SCORES)) return attentionScoresReference(q, k, heads);
  return tf.engine().runKernel(ATTENTION_SCORES, { q, k }, { heads } as unknown as NamedAttrMap) as Tensor;
}

export function attentionContext(p: Tensor, v: Tensor, heads: number, transposed = false): Tensor {
  if (!useFused(ATTENTION_CONTEXT)) return attentionContextReference(p, v, heads, transposed);
  return tf.engine().runKernel(ATTENTION_CONTEXT, { p, v }, { heads, transposed } as unknown as NamedAttrMap) as Tensor;
}

const i32 = (data: number) => ({ type: 'int32' as const, data: [data] });
const UNIFORMS = 'heads : i32, headDim : i32, sq : i32, sk : i32,';

function scoresShape(q: TensorInfo, k: TensorInfo, heads: number) {
  const [b, sq, width] = q.shape;
  return { b, sq, sk: k.shape[1], width, headDim: width / heads };
}

function webgpuScores({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const heads = attrs!.heads as number;
  const { b, sq, sk, headDim } = scoresShape(inputs.q, inputs.k, heads);
  const body = `
    let width = uniforms.heads * uniforms.headDim;
    let j = index % uniforms.sk;
    let i = (index / uniforms.sk) % uniforms.sq;
    let h = (index / (uniforms.sk * uniforms.sq)) % uniforms.heads;
    let batch = index / (uniforms.sk * uniforms.sq * uniforms.heads);
    let qBase = (batch * uniforms.sq + i) * width + h * uniforms.headDim;
    let kBase = (batch * uniforms.sk + j) * width + h * uniforms.headDim;
    var sum = 0.0;
    for (var d = 0; d < uniforms.headDim; d = d + 1) { sum = sum + q[qBase + d] * k[kBase + d]; }
    setOutputAtIndex(index, sum);`;
  const program = elementwiseProgram('attention_scores', ['q', 'k'], [b, heads, sq, sk], body, UNIFORMS);
  return (backend as WebGpuBackendLike).runWebGPUProgram(program, [inputs.q, inputs.k], 'float32', [i32(heads), i32(headDim), i32(sq), i32(sk)]);
}

function webgpuContext({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const heads = attrs!.heads as number;
  const transposed = attrs!.transposed as boolean;
  const [b, , sq, sk] = inputs.p.shape;
  const width = inputs.v.shape[2];
  const headDim = width / heads;
  // Output row r sums over the other axis of p: keys (plain) or queries (transposed).
  const [rows, over] = transposed ? ['uniforms.sk', 'uniforms.sq'] : ['uniforms.sq', 'uniforms.sk'];
  const pIndex = transposed ? '((batch * uniforms.heads + h) * uniforms.sq + t) * uniforms.sk + r' : '((batch * uniforms.heads + h) * uniforms.sq + r) * uniforms.sk + t';
  const body = `
    let width = uniforms.heads * uniforms.headDim;
    let c = index % width;
    let r = (index / width) % ${rows};
    let batch = index / (width * ${rows});
    let h = c / uniforms.headDim;
    var sum = 0.0;
    for (var t = 0; t < ${over}; t = t + 1) { sum = sum + p[${pIndex}] * v[(batch * ${over} + t) * width + c]; }
    setOutputAtIndex(index, sum);`;
  const program = elementwiseProgram(`attention_context${transposed ? '_t' : ''}`, ['p', 'v'], [b, transposed ? sk : sq, width], body, UNIFORMS);
  return (backend as WebGpuBackendLike).runWebGPUProgram(program, [inputs.p, inputs.v], 'float32', [i32(heads), i32(headDim), i32(sq), i32(sk)]);
}

function cpuScores({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b_ = backend as CpuBackendLike;
  const heads = attrs!.heads as number;
  const { b, sq, sk, width, headDim } = scoresShape(inputs.q, inputs.k, heads);
  const [q, k] = [b_.data.get(inputs.q.dataId).values, b_.data.get(inputs.k.dataId).values];
  const out = new Float32Array(b * heads * sq * sk);
  let o = 0;
  for (let n = 0; n < b; n++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < sq; i++)
        for (let j = 0; j < sk; j++) {
          let sum = 0;
          for (let d = 0; d < headDim; d++) sum += q[(n * sq + i) * width + h * headDim + d] * k[(n * sk + j) * width + h * headDim + d];
          out[o++] = sum;
        }
  return b_.makeTensorInfo([b, heads, sq, sk], 'float32', out);
}

function cpuContext({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b_ = backend as CpuBackendLike;
  const heads = attrs!.heads as number;
  const transposed = attrs!.transposed as boolean;
  const [b, , sq, sk] = inputs.p.shape;
  const width = inputs.v.shape[2];
  const headDim = width / heads;
  const [p, v] = [b_.data.get(inputs.p.dataId).values, b_.data.get(inputs.v.dataId).values];
  const [rows, over] = transposed ? [sk, sq] : [sq, sk];
  const out = new Float32Array(b * rows * width);
  for (let n = 0; n < b; n++)
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < width; c++) {
        const h = Math.floor(c / headDim);
        let sum = 0;
        for (let t = 0; t < over; t++) {
          const pi = transposed ? ((n * heads + h) * sq + t) * sk + r : ((n * heads + h) * sq + r) * sk + t;
          sum += p[pi] * v[(n * over + t) * width + c];
        }
        out[(n * rows + r) * width + c] = sum;
      }
  return b_.makeTensorInfo([b, rows, width], 'float32', out);
}

export function registerAttentionMatmul(): void {
  registerWebgpuAndCpu(ATTENTION_SCORES, webgpuScores, cpuScores);
  registerWebgpuAndCpu(ATTENTION_CONTEXT, webgpuContext, cpuContext);
  tf.registerGradient({
    kernelName: ATTENTION_SCORES,
    inputsToSave: ['q', 'k'],
    gradFunc: (dy, [q, k], attrs) => {
      const heads = (attrs as { heads: number }).heads;
      return {
        q: () => attentionContext(dy as Tensor, k, heads, false),
        k: () => attentionContext(dy as Tensor, q, heads, true),
      };
    },
  });
  tf.registerGradient({
    kernelName: ATTENTION_CONTEXT,
    inputsToSave: ['p', 'v'],
    gradFunc: (dy, [p, v], attrs) => {
      const { heads, transposed } = attrs as { heads: number; transposed: boolean };
      // out = p v (per head): dp = dy v^T, dv = p^T dy. out = p^T x: dp = x dy^T, dx = p dy.
      return transposed
        ? { p: () => attentionScores(v, dy as Tensor, heads), v: () => attentionContext(p, dy as Tensor, heads, false) }
        : { p: () => attentionScores(dy as Tensor, v, heads), v: () => attentionContext(p, dy as Tensor, heads, true) };
    },
  });
}
