import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, type AttentionMasking } from '@deltatune/core';
import type { NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import {
  f32,
  i32,
  registerGradientOnce,
  registerWebgpuAndCpu,
  rowProgram,
  type CpuBackendLike,
  type KernelArgs,
  type WebGpuBackendLike,
} from './program';

/**
 * Attention probabilities in one kernel: scale the scores, mask keys (padding, causal, with prefix
 * positions always visible), softmax. Plain ops build the additive mask (4 kernels per layer), scale
 * q, add and softmax; the backward pass of softmax alone is 4 more. Here: one kernel each way.
 */
const ATTENTION_SOFTMAX = FUSED_KERNELS.attentionSoftmax;
export const ATTENTION_SOFTMAX_GRAD = 'DeltatuneAttentionSoftmaxGrad';
/** The mask value of the plain-ops reference (core's attentionBias). */
const NEG = -1e9;

function geometry(scores: TensorInfo) {
  const [b, heads, seq, cols] = scores.shape;
  return { b, heads, seq, cols, rows: b * heads * seq };
}

function webgpuForward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const o = attrs as unknown as AttentionMasking;
  const { seq, cols, rows } = geometry(inputs.scores);
  const real = cols - o.extra;
  // Row r is (batch r / (heads * seq), query r % seq).
  const body = `
    let batch = row / (uniforms.heads * uniforms.seq);
    let query = row % uniforms.seq;
    var rowMax = -3.402823e+38;
    for (var c = tid; c < cols; c = c + WG) { rowMax = max(rowMax, logit(row, c, batch, query)); }
    partialA[tid] = rowMax;
    workgroupBarrier();
    for (var stride = WG / 2; stride > 0; stride = stride / 2) {
      if (tid < stride) { partialA[tid] = max(partialA[tid], partialA[tid + stride]); }
      workgroupBarrier();
    }
    let m = partialA[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var c = tid; c < cols; c = c + WG) { sum = sum + exp(logit(row, c, batch, query) - m); }
    let total = reduceA(sum, tid);
    for (var c = tid; c < cols; c = c + WG) { setOutputAtIndex(row * cols + c, exp(logit(row, c, batch, query) - m) / total); }`;
  const program = rowProgram(
    `attention_softmax_${o.causal ? 'causal' : 'full'}`,
    ['scores', 'keyMask'],
    rows,
    cols,
    body,
    'heads : i32, seq : i32, extra : i32, real : i32, scale : f32,',
  );
  const userCode = program.getUserCode;
  program.getUserCode = () => `
    fn logit(row : i32, c : i32, batch : i32, query : i32) -> f32 {
      let z = f32(scores[row * (uniforms.extra + uniforms.real) + c]) * uniforms.scale;
      if (c < uniforms.extra) { return z; }
      let key = c - uniforms.extra;
      var allowed = f32(keyMask[batch * uniforms.real + key]) != 0.0;
      ${o.causal ? 'allowed = allowed && key <= query;' : ''}
      return select(z + ${NEG.toFixed(1)}, z, allowed);
    }
    ${userCode()}`;
  const uniforms = [i32(o.heads), i32(seq), i32(o.extra), i32(real), f32(o.scale)];
  const out = (backend as WebGpuBackendLike).runWebGPUProgram(program, [inputs.scores, inputs.keyMask], 'float32', uniforms);
  return { ...out, shape: inputs.scores.shape };
}

// dscores = scale * y * (dy - sum(dy * y)) per row.
function webgpuGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const o = attrs as unknown as AttentionMasking;
  const { cols, rows } = geometry(inputs.y);
  const body = `
    var dot = 0.0;
    for (var c = tid; c < cols; c = c + WG) { let i = row * cols + c; dot = dot + dy[i] * y[i]; }
    let total = reduceA(dot, tid);
    for (var c = tid; c < cols; c = c + WG) { let i = row * cols + c; setOutputAtIndex(i, uniforms.scale * y[i] * (dy[i] - total)); }`;
  const program = rowProgram('attention_softmax_grad', ['y', 'dy'], rows, cols, body, 'scale : f32,');
  const out = (backend as WebGpuBackendLike).runWebGPUProgram(program, [inputs.y, inputs.dy], 'float32', [f32(o.scale)]);
  return { ...out, shape: inputs.y.shape };
}

function cpuForward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const o = attrs as unknown as AttentionMasking;
  const b = backend as CpuBackendLike;
  const { heads, seq, cols, rows } = geometry(inputs.scores);
  const scores = b.data.get(inputs.scores.dataId).values;
  const mask = b.data.get(inputs.keyMask.dataId).values;
  const real = cols - o.extra;
  const out = new Float32Array(rows * cols);
  const z = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const batch = Math.floor(r / (heads * seq));
    const query = r % seq;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) {
      const key = c - o.extra;
      const allowed = c < o.extra || (mask[batch * real + key] !== 0 && (!o.causal || key <= query));
      z[c] = Math.fround(scores[r * cols + c] * o.scale) + (allowed ? 0 : NEG);
      max = Math.max(max, z[c]);
    }
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(z[c] - max);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp(z[c] - max) / sum;
  }
  return b.makeTensorInfo(inputs.scores.shape, 'float32', out);
}

function cpuGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const scale = (attrs as unknown as AttentionMasking).scale;
  const b = backend as CpuBackendLike;
  const { cols, rows } = geometry(inputs.y);
  const y = b.data.get(inputs.y.dataId).values;
  const dy = b.data.get(inputs.dy.dataId).values;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dy[r * cols + c] * y[r * cols + c];
    for (let c = 0; c < cols; c++) out[r * cols + c] = scale * y[r * cols + c] * (dy[r * cols + c] - dot);
  }
  return b.makeTensorInfo(inputs.y.shape, 'float32', out);
}

export function registerAttentionSoftmax(): void {
  registerWebgpuAndCpu(ATTENTION_SOFTMAX, webgpuForward, cpuForward);
  registerWebgpuAndCpu(ATTENTION_SOFTMAX_GRAD, webgpuGrad, cpuGrad);
  registerGradientOnce({
    kernelName: ATTENTION_SOFTMAX,
    inputsToSave: ['keyMask'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [keyMask, y] = saved;
      return {
        scores: () => tf.engine().runKernel(ATTENTION_SOFTMAX_GRAD, { y, dy: dy as Tensor }, attrs as NamedAttrMap) as Tensor,
        // The mask says which keys exist: not something to differentiate.
        keyMask: () => tf.zeros(keyMask.shape),
      };
    },
  });
}
