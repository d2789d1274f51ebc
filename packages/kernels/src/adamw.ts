import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS } from '@deltatune/core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import {
  elementwiseProgram,
  f32,
  i32,
  registerWasm,
  registerWebgpuAndCpu,
  workgroupSum,
  type WasmBackendLike,
  type CpuBackendLike,
  type KernelArgs,
  type WebGpuBackendLike,
  type WebGpuProgram,
} from './program';

/**
 * An AdamW step is ~14 elementwise kernels per variable in plain ops, and clipping by the global
 * norm 3 more (square, sum, scale). Fused: one kernel for the squared norm, one per moment (the
 * clip factor folded in), one for the parameter: 4 per variable. The moments stay two tensors, so
 * checkpoints are the same with and without fusion and a run resumes across backends.
 *
 * A factor of 0 (or below) means "skip this step": moments and parameter come back unchanged. The
 * trainer sets it when the loss or the gradient norm is not finite, on the device, so it need not
 * read the loss back before queueing the next step.
 */
const SUM_OF_SQUARES = FUSED_KERNELS.sumOfSquares;
const ADAMW_MOMENT = FUSED_KERNELS.adamwMoment;
const ADAMW_PARAM = FUSED_KERNELS.adamwParam;

/** The attributes @deltatune/train's `adamwParam` passes. */
interface AdamWStep {
  readonly lr: number;
  readonly c1: number;
  readonly c2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
}

const SUM_WG = 256;
/** Past this many elements the squared sum is split over workgroups (one would scan it alone). */
const SPLIT_ABOVE = 1 << 16;
const MAX_PARTS = 512;

/**
 * sum(x^2) over `parts` workgroups, each striding over its share of the tensor and writing one
 * partial sum; with one part, the whole sum. `squares: false` sums values as they are (the
 * second pass, over the partials).
 */
function sumProgram(parts: number, squares: boolean): WebGpuProgram {
  const key = `sum_${squares ? 'of_squares' : 'partials'}`;
  return {
    variableNames: ['x'],
    outputShape: [parts],
    shaderKey: `deltatune_${key}`,
    label: `deltatune_${key}`,
    dispatchLayout: { x: [0] },
    dispatch: [parts, 1, 1],
    workgroupSize: [SUM_WG, 1, 1],
    uniforms: 'n : i32, parts : i32,',
    getUserCode: () => `
      const WG = ${SUM_WG};
      ${workgroupSum('A', SUM_WG)}
      fn main(index : i32) {
        let tid = i32(localId.x);
        let part = min(index / WG, uniforms.parts - 1);
        var s = 0.0;
        for (var i = part * WG + tid; i < uniforms.n; i = i + uniforms.parts * WG) {
          let v = x[i];
          s = s + ${squares ? 'v * v' : 'v'};
        }
        let total = reduceA(s, tid);
        if (tid == 0) { setOutputAtIndex(part, total); }
      }`,
  };
}

function webgpuSumOfSquares({ inputs, backend }: KernelArgs): TensorInfo {
  const gpu = backend as WebGpuBackendLike;
  const n = tf.util.sizeFromShape(inputs.x.shape);
  const run = (x: TensorInfo, size: number, parts: number, squares: boolean) =>
    gpu.runWebGPUProgram(sumProgram(parts, squares), [x], 'float32', [i32(size), i32(parts)]);
  if (n <= SPLIT_ABOVE) return { ...run(inputs.x, n, 1, true), shape: [] };
  // A full fine-tuning gradient (a 23M-element embedding) in one workgroup would use one of the
  // GPU's cores for the whole scan: split it, then add the partials (two dispatches, not one).
  const parts = Math.min(MAX_PARTS, Math.ceil(n / SPLIT_ABOVE) * 8);
  const partials = run(inputs.x, n, parts, true);
  const total = run(partials, parts, 1, false);
  gpu.disposeData(partials.dataId);
  return { ...total, shape: [] };
}

function webgpuMoment({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const second = attrs!.second as boolean;
  const g = second ? '(grad[index] * factor[0]) * (grad[index] * factor[0])' : 'grad[index] * factor[0]';
  const body = `
    if (!(factor[0] > 0.0)) { setOutputAtIndex(index, moment[index]); return; }
    setOutputAtIndex(index, uniforms.beta * moment[index] + (1.0 - uniforms.beta) * ${g});`;
  const program = elementwiseProgram(
    `adamw_moment_${second ? 2 : 1}`,
    ['moment', 'grad', 'factor'],
    inputs.moment.shape,
    body,
    'beta : f32,',
  );
  return (backend as WebGpuBackendLike).runWebGPUProgram(program, [inputs.moment, inputs.grad, inputs.factor], 'float32', [
    f32(attrs!.beta as number),
  ]);
}

function webgpuParam({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const s = attrs as unknown as AdamWStep;
  const body = `
    let p = param[index];
    if (!(factor[0] > 0.0)) { setOutputAtIndex(index, p); return; }
    let update = (m[index] / uniforms.c1) / (sqrt(v[index] / uniforms.c2) + uniforms.epsilon) + uniforms.weightDecay * p;
    setOutputAtIndex(index, p - uniforms.lr * update);`;
  const program = elementwiseProgram(
    'adamw_param',
    ['param', 'm', 'v', 'factor'],
    inputs.param.shape,
    body,
    'lr : f32, c1 : f32, c2 : f32, epsilon : f32, weightDecay : f32,',
  );
  return (backend as WebGpuBackendLike).runWebGPUProgram(program, [inputs.param, inputs.m, inputs.v, inputs.factor], 'float32', [
    f32(s.lr),
    f32(s.c1),
    f32(s.c2),
    f32(s.epsilon),
    f32(s.weightDecay),
  ]);
}

function cpuSumOfSquares({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as CpuBackendLike;
  const x = b.data.get(inputs.x.dataId).values;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return b.makeTensorInfo([], 'float32', Float32Array.of(s));
}

function cpuMoment({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as CpuBackendLike;
  const [moment, grad] = [b.data.get(inputs.moment.dataId).values, b.data.get(inputs.grad.dataId).values];
  const f = b.data.get(inputs.factor.dataId).values[0];
  const beta = attrs!.beta as number;
  if (!(f > 0)) return b.makeTensorInfo(inputs.moment.shape, 'float32', Float32Array.from(moment));
  const out = new Float32Array(moment.length);
  for (let i = 0; i < out.length; i++) {
    const g = grad[i] * f;
    out[i] = beta * moment[i] + (1 - beta) * (attrs!.second ? g * g : g);
  }
  return b.makeTensorInfo(inputs.moment.shape, 'float32', out);
}

function cpuParam({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as CpuBackendLike;
  const s = attrs as unknown as AdamWStep;
  const [p, m, v] = [b.data.get(inputs.param.dataId).values, b.data.get(inputs.m.dataId).values, b.data.get(inputs.v.dataId).values];
  if (!(b.data.get(inputs.factor.dataId).values[0] > 0)) return b.makeTensorInfo(inputs.param.shape, 'float32', Float32Array.from(p));
  const out = new Float32Array(p.length);
  for (let i = 0; i < out.length; i++) out[i] = p[i] - s.lr * (m[i] / s.c1 / (Math.sqrt(v[i] / s.c2) + s.epsilon) + s.weightDecay * p[i]);
  return b.makeTensorInfo(inputs.param.shape, 'float32', out);
}

// wasm: the same loops on the wasm heap. In plain ops a skipped step's select broadcasts the scalar
// factor to each variable's shape (a Tile per tensor: 1.1 s of a 5.2 s BERT-small full fine-tuning
// step, the 7.8M-element embedding tiled three times); here each update is one pass.

function wasmSumOfSquares({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackendLike;
  const out = b.makeOutput([], 'float32');
  const x = b.typedArrayFromHeap(inputs.x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  b.typedArrayFromHeap(out)[0] = s;
  return out;
}

function wasmMoment({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as WasmBackendLike;
  const out = b.makeOutput(inputs.moment.shape, 'float32');
  // Views after the allocation: growing the heap detaches views taken before it.
  const [o, moment, grad] = [b.typedArrayFromHeap(out), b.typedArrayFromHeap(inputs.moment), b.typedArrayFromHeap(inputs.grad)];
  const f = b.typedArrayFromHeap(inputs.factor)[0];
  const beta = attrs!.beta as number;
  const rest = 1 - beta;
  if (!(f > 0)) o.set(moment);
  else if (attrs!.second)
    for (let i = 0; i < o.length; i++) {
      const g = grad[i] * f;
      o[i] = beta * moment[i] + rest * g * g;
    }
  else for (let i = 0; i < o.length; i++) o[i] = beta * moment[i] + rest * (grad[i] * f);
  return out;
}

function wasmParam({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as WasmBackendLike;
  const s = attrs as unknown as AdamWStep;
  const out = b.makeOutput(inputs.param.shape, 'float32');
  const [o, p, m, v] = [
    b.typedArrayFromHeap(out),
    b.typedArrayFromHeap(inputs.param),
    b.typedArrayFromHeap(inputs.m),
    b.typedArrayFromHeap(inputs.v),
  ];
  if (!(b.typedArrayFromHeap(inputs.factor)[0] > 0)) {
    o.set(p);
    return out;
  }
  // Locals, not attribute reads, inside the loop: V8 keeps them in registers.
  const { lr, c1, c2, epsilon, weightDecay } = s;
  for (let i = 0; i < o.length; i++) o[i] = p[i] - lr * (m[i] / c1 / (Math.sqrt(v[i] / c2) + epsilon) + weightDecay * p[i]);
  return out;
}

export function registerAdamW(): void {
  for (const [kernelName, webgpu, cpu] of [
    [SUM_OF_SQUARES, webgpuSumOfSquares, cpuSumOfSquares],
    [ADAMW_MOMENT, webgpuMoment, cpuMoment],
    [ADAMW_PARAM, webgpuParam, cpuParam],
  ] as const) {
    registerWebgpuAndCpu(kernelName, webgpu, cpu);
  }
  registerWasm(SUM_OF_SQUARES, wasmSumOfSquares);
  registerWasm(ADAMW_MOMENT, wasmMoment);
  registerWasm(ADAMW_PARAM, wasmParam);
}
