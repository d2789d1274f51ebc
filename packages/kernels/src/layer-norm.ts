import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS } from '@deltatune/core';
import type { NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import {
  f32,
  registerGradientOnce,
  registerWebgpuAndCpu,
  rowProgram,
  type CpuBackendLike,
  type KernelArgs,
  type WebGpuBackendLike,
  type WebGpuProgram,
} from './program';

/**
 * Layer norm over the last axis in one kernel (plain tfjs ops take ~10 forward and ~20 backward:
 * moments, centring, rsqrt, scale, shift and their gradients), optionally of `x + residual` (a
 * post-norm block's residual add, one kernel less). The backward pass is one more kernel for the
 * input's gradient; gamma's and beta's are computed only when the tape asks for them (BitFit, full
 * fine-tuning).
 */
const LAYER_NORM = FUSED_KERNELS.layerNorm;
/** The same with a `residual` input: a kernel of its own so each has a fixed gradient signature. */
const ADD_LAYER_NORM = FUSED_KERNELS.addLayerNorm;
export const LAYER_NORM_GRAD = 'DeltatuneLayerNormGrad';

// Mean and inverse deviation of `row`, two passes over it (as moments does) for accuracy.
const ROW_STATS = `
  var sum = 0.0;
  for (var c = tid; c < cols; c = c + WG) { sum = sum + xv(row * cols + c); }
  let mean = reduceA(sum, tid) / f32(cols);
  var sq = 0.0;
  for (var c = tid; c < cols; c = c + WG) { let d = xv(row * cols + c) - mean; sq = sq + d * d; }
  let rstd = inverseSqrt(reduceA(sq, tid) / f32(cols) + uniforms.epsilon);`;

/** The normalised input: `x`, or `x + residual`. */
function withInput(program: WebGpuProgram, residual: boolean): WebGpuProgram {
  const userCode = program.getUserCode;
  const read = residual ? 'x[i] + residual[i]' : 'x[i]';
  return { ...program, getUserCode: () => `fn xv(i : i32) -> f32 { return ${read}; }\n${userCode()}` };
}

function inputNames(inputs: Record<string, TensorInfo>, rest: string[]): string[] {
  return inputs.residual ? ['x', 'residual', ...rest] : ['x', ...rest];
}

function webgpuForward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const [rows, cols] = inputs.x.shape;
  const body = `${ROW_STATS}
    for (var c = tid; c < cols; c = c + WG) {
      let i = row * cols + c;
      setOutputAtIndex(i, (xv(i) - mean) * rstd * gamma[c] + beta[c]);
    }`;
  const names = inputNames(inputs, ['gamma', 'beta']);
  const program = withInput(
    rowProgram(`layer_norm${inputs.residual ? '_residual' : ''}`, names, rows, cols, body, 'epsilon : f32,'),
    !!inputs.residual,
  );
  return (backend as WebGpuBackendLike).runWebGPUProgram(
    program,
    names.map((n) => inputs[n]),
    'float32',
    [f32(attrs!.epsilon as number)],
  );
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), with g = dy * gamma.
function webgpuGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const [rows, cols] = inputs.x.shape;
  const body = `${ROW_STATS}
    var sg = 0.0;
    var sgx = 0.0;
    for (var c = tid; c < cols; c = c + WG) {
      let i = row * cols + c;
      let g = dy[i] * gamma[c];
      sg = sg + g;
      sgx = sgx + g * (xv(i) - mean) * rstd;
    }
    let meanG = reduceA(sg, tid) / f32(cols);
    let meanGX = reduceB(sgx, tid) / f32(cols);
    for (var c = tid; c < cols; c = c + WG) {
      let i = row * cols + c;
      let xhat = (xv(i) - mean) * rstd;
      setOutputAtIndex(i, rstd * (dy[i] * gamma[c] - meanG - xhat * meanGX));
    }`;
  const names = inputNames(inputs, ['gamma', 'dy']);
  const program = withInput(
    rowProgram(`layer_norm_grad${inputs.residual ? '_residual' : ''}`, names, rows, cols, body, 'epsilon : f32,'),
    !!inputs.residual,
  );
  return (backend as WebGpuBackendLike).runWebGPUProgram(
    program,
    names.map((n) => inputs[n]),
    'float32',
    [f32(attrs!.epsilon as number)],
  );
}

/** The normalised input on the CPU: `x`, or `x + residual` rounded to float32 as tfjs's add would. */
function cpuInput(b: CpuBackendLike, inputs: Record<string, TensorInfo>): Float32Array {
  const x = b.data.get(inputs.x.dataId).values as Float32Array;
  if (!inputs.residual) return x;
  const r = b.data.get(inputs.residual.dataId).values;
  return x.map((v, i) => v + r[i]);
}

/** The CPU twin: the same arithmetic in JS, row by row (float64 accumulation). */
function cpuRows(
  x: Float32Array,
  rows: number,
  cols: number,
  epsilon: number,
  each: (row: number, mean: number, rstd: number) => void,
): void {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += x[r * cols + c];
    const mean = sum / cols;
    let sq = 0;
    for (let c = 0; c < cols; c++) sq += (x[r * cols + c] - mean) ** 2;
    each(r, mean, 1 / Math.sqrt(sq / cols + epsilon));
  }
}

function cpuForward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as CpuBackendLike;
  const [rows, cols] = inputs.x.shape;
  const x = cpuInput(b, inputs);
  const gamma = b.data.get(inputs.gamma.dataId).values;
  const beta = b.data.get(inputs.beta.dataId).values;
  const out = new Float32Array(rows * cols);
  cpuRows(x, rows, cols, attrs!.epsilon as number, (r, mean, rstd) => {
    for (let c = 0; c < cols; c++) out[r * cols + c] = (x[r * cols + c] - mean) * rstd * gamma[c] + beta[c];
  });
  return b.makeTensorInfo([rows, cols], 'float32', out);
}

function cpuGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as CpuBackendLike;
  const [rows, cols] = inputs.x.shape;
  const x = cpuInput(b, inputs);
  const gamma = b.data.get(inputs.gamma.dataId).values;
  const dy = b.data.get(inputs.dy.dataId).values;
  const out = new Float32Array(rows * cols);
  cpuRows(x, rows, cols, attrs!.epsilon as number, (r, mean, rstd) => {
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < cols; c++) {
      const g = dy[r * cols + c] * gamma[c];
      sg += g;
      sgx += g * (x[r * cols + c] - mean) * rstd;
    }
    for (let c = 0; c < cols; c++) {
      const xhat = (x[r * cols + c] - mean) * rstd;
      out[r * cols + c] = rstd * (dy[r * cols + c] * gamma[c] - sg / cols - xhat * (sgx / cols));
    }
  });
  return b.makeTensorInfo([rows, cols], 'float32', out);
}

function gradient(kernelName: string, withResidual: boolean): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: withResidual ? ['x', 'residual', 'gamma'] : ['x', 'gamma'],
    gradFunc: (dy, saved, attrs) => {
      const [x, residual, gamma] = withResidual ? saved : [saved[0], undefined, saved[1]];
      const epsilon = (attrs as { epsilon: number }).epsilon;
      const inputs: tf.NamedTensorMap = residual ? { x, residual, gamma, dy: dy as Tensor } : { x, gamma, dy: dy as Tensor };
      // x and residual share one gradient: computed once, whichever the tape asks for first.
      let dx: Tensor | undefined;
      const inputGrad = () =>
        dx && !dx.isDisposed
          ? tf.reshape(dx, dx.shape)
          : (dx = tf.engine().runKernel(LAYER_NORM_GRAD, inputs, { epsilon } as unknown as NamedAttrMap) as Tensor);
      // Normalised input, for gamma's gradient only: frozen norms never compute it.
      const xhat = () => {
        const input = residual ? tf.add(x, residual) : x;
        const { mean, variance } = tf.moments(input, -1, true);
        return tf.mul(tf.sub(input, mean), tf.rsqrt(tf.add(variance, epsilon)));
      };
      return {
        x: inputGrad,
        ...(withResidual ? { residual: inputGrad } : {}),
        gamma: () => tf.sum(tf.mul(dy as Tensor, xhat()), 0),
        beta: () => tf.sum(dy as Tensor, 0),
      };
    },
  };
}

export function registerLayerNorm(): void {
  registerWebgpuAndCpu(LAYER_NORM, webgpuForward, cpuForward);
  registerWebgpuAndCpu(ADD_LAYER_NORM, webgpuForward, cpuForward);
  registerWebgpuAndCpu(LAYER_NORM_GRAD, webgpuGrad, cpuGrad);
  registerGradientOnce(gradient(LAYER_NORM, false));
  registerGradientOnce(gradient(ADD_LAYER_NORM, true));
}
