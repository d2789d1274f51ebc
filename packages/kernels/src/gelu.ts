import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, type GeluForm } from '@deltatune/core';
import type { NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import {
  elementwiseProgram,
  erfApprox,
  registerGradientOnce,
  registerWebgpuAndCpu,
  WGSL_MATH,
  type CpuBackendLike,
  type KernelArgs,
  type WebGpuBackendLike,
} from './program';

/**
 * GELU in one kernel forward and one backward (plain ops: 5 and about 8). `erf` is BERT's exact
 * form, `tanh` GPT-2's `gelu_new` approximation.
 */
const GELU = FUSED_KERNELS.gelu;
export const GELU_GRAD = 'DeltatuneGeluGrad';

const TANH_C = Math.sqrt(2 / Math.PI);

const WGSL = {
  erf: {
    value: 'let v = 0.5 * xi * (1.0 + erfApprox(xi * 0.7071067811865476));',
    slope: 'let s = 0.5 * (1.0 + erfApprox(xi * 0.7071067811865476)) + xi * 0.3989422804014327 * exp(-0.5 * xi * xi);',
  },
  tanh: {
    value: `let v = 0.5 * xi * (1.0 + tanhSafe(${TANH_C} * (xi + 0.044715 * xi * xi * xi)));`,
    slope: `let t = tanhSafe(${TANH_C} * (xi + 0.044715 * xi * xi * xi));
            let s = 0.5 * (1.0 + t) + 0.5 * xi * (1.0 - t * t) * ${TANH_C} * (1.0 + 0.134145 * xi * xi);`,
  },
};

function geluValue(x: number, form: GeluForm): number {
  if (form === 'erf') return 0.5 * x * (1 + erfApprox(x * Math.SQRT1_2));
  return 0.5 * x * (1 + Math.tanh(TANH_C * (x + 0.044715 * x ** 3)));
}

function geluSlope(x: number, form: GeluForm): number {
  if (form === 'erf') return 0.5 * (1 + erfApprox(x * Math.SQRT1_2)) + x * 0.3989422804014327 * Math.exp(-0.5 * x * x);
  const t = Math.tanh(TANH_C * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * TANH_C * (1 + 0.134145 * x * x);
}

function webgpu(grad: boolean) {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    const form = attrs!.form as GeluForm;
    const body = grad
      ? `let xi = x[index]; ${WGSL[form].slope} setOutputAtIndex(index, dy[index] * s);`
      : `let xi = x[index]; ${WGSL[form].value} setOutputAtIndex(index, v);`;
    const program = elementwiseProgram(`gelu_${form}${grad ? '_grad' : ''}`, grad ? ['x', 'dy'] : ['x'], inputs.x.shape, body);
    const userCode = program.getUserCode;
    program.getUserCode = () => WGSL_MATH + userCode();
    return (backend as WebGpuBackendLike).runWebGPUProgram(program, grad ? [inputs.x, inputs.dy] : [inputs.x], 'float32');
  };
}

function cpu(grad: boolean) {
  return ({ inputs, backend, attrs }: KernelArgs): TensorInfo => {
    const b = backend as CpuBackendLike;
    const form = attrs!.form as GeluForm;
    const x = b.data.get(inputs.x.dataId).values;
    const dy = grad ? b.data.get(inputs.dy.dataId).values : undefined;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = dy ? dy[i] * geluSlope(x[i], form) : geluValue(x[i], form);
    return b.makeTensorInfo(inputs.x.shape, 'float32', out);
  };
}

export function registerGelu(): void {
  registerWebgpuAndCpu(GELU, webgpu(false), cpu(false));
  registerWebgpuAndCpu(GELU_GRAD, webgpu(true), cpu(true));
  registerGradientOnce({
    kernelName: GELU,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({ x: () => tf.engine().runKernel(GELU_GRAD, { x, dy: dy as Tensor }, attrs as NamedAttrMap) as Tensor }),
  });
}
