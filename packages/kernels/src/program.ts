import * as tf from '@tensorflow/tfjs-core';
import type { DataType, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

/**
 * The part of @tensorflow/tfjs-backend-webgpu's program contract our kernels use. The backend
 * wraps `getUserCode()` with bindings (`result`, then one `array` per variable name, read-only),
 * a `uniforms` struct (each input's shape, `outShape`, `size` when asked for, then ours) and
 * `_start`, which calls our `main(index)` with the global invocation index. Kept structural so core
 * needs no import of the optional webgpu package.
 */
export interface WebGpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  size?: boolean;
  /** Which deltatune kernel this is (tfjs rewrites `shaderKey`; dispatch counts group by this). */
  label: string;
  getUserCode(): string;
}

export type ProgramUniform = { type: 'float32' | 'int32'; data: number[] };

/** One int or float uniform value, in the order the program's `uniforms` string declares them. */
export const i32 = (value: number): ProgramUniform => ({ type: 'int32', data: [value] });
export const f32 = (value: number): ProgramUniform => ({ type: 'float32', data: [value] });

export interface WebGpuBackendLike {
  runWebGPUProgram(program: WebGpuProgram, inputs: TensorInfo[], dtype: DataType, uniforms?: ProgramUniform[]): TensorInfo;
  /** Frees an intermediate a kernel made and does not return. */
  disposeData(dataId: object): void;
}

/** What tfjs passes a kernel function. */
export type KernelArgs = { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: NamedAttrMap };
type KernelImpl = (args: KernelArgs) => TensorInfo;

/**
 * Registers a kernel for webgpu (its WGSL program) and for cpu (its JS twin).
 * A second copy of this package (two bundles on one page) finds them registered and leaves them.
 */
export function registerWebgpuAndCpu(kernelName: string, webgpu: KernelImpl, cpu: KernelImpl): void {
  if (!tf.getKernel(kernelName, 'webgpu')) tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: webgpu as tf.KernelFunc });
  if (!tf.getKernel(kernelName, 'cpu')) tf.registerKernel({ kernelName, backendName: 'cpu', kernelFunc: cpu as tf.KernelFunc });
}

/**
 * Registers a kernel for wasm: a JS loop over the wasm heap, for the kernels where tfjs's plain ops
 * cost far more than one pass over memory (the AdamW update). Most fused kernels have none: wasm's
 * own plain ops are as fast as a JS loop there.
 */
export function registerWasm(kernelName: string, wasm: KernelImpl): void {
  if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: wasm as tf.KernelFunc });
}

/** The part of the wasm backend's memory API a JS kernel uses (as its own Slice kernel does). */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

/** Registers a kernel's gradient unless a copy of this package already did. */
export function registerGradientOnce(config: tf.GradConfig): void {
  if (!tf.getGradient(config.kernelName)) tf.registerGradient(config);
}

export interface CpuBackendLike {
  data: { get(id: object): { values: ArrayLike<number> } };
  makeTensorInfo(shape: number[], dtype: DataType, values: Float32Array): TensorInfo;
}

/** Threads per workgroup of a row program: a power of two, so the tree reduction halves evenly. */
export function rowWorkgroup(cols: number): number {
  return cols >= 512 ? 256 : cols >= 128 ? 128 : 64;
}

/** `reduce<name>(value, tid)`: the sum of one value per thread over the workgroup (every thread must call it). */
export function workgroupSum(name: string, wg: number): string {
  return `
      var<workgroup> partial${name} : array<f32, ${wg}>;
      fn reduce${name}(value : f32, tid : i32) -> f32 {
        partial${name}[tid] = value;
        workgroupBarrier();
        for (var stride = WG / 2; stride > 0; stride = stride / 2) {
          if (tid < stride) { partial${name}[tid] = partial${name}[tid] + partial${name}[tid + stride]; }
          workgroupBarrier();
        }
        let total = partial${name}[0];
        workgroupBarrier();
        return total;
      }`;
}

/**
 * A program with one workgroup per row of `[rows, cols]`: `body` sees `row`, `tid` (thread in the
 * row), `cols`, the constant `WG`, and two independent workgroup sums, `reduceA` and `reduceB`.
 */
export function rowProgram(
  key: string,
  variableNames: string[],
  rows: number,
  cols: number,
  body: string,
  uniforms?: string,
): WebGpuProgram {
  const wg = rowWorkgroup(cols);
  return {
    variableNames,
    outputShape: [rows, cols],
    shaderKey: `deltatune_${key}_${wg}`,
    label: `deltatune_${key}`,
    dispatchLayout: { x: [0, 1] },
    dispatch: [rows, 1, 1],
    workgroupSize: [wg, 1, 1],
    uniforms,
    getUserCode: () => `
      const WG = ${wg};
      ${workgroupSum('A', wg)}
      ${workgroupSum('B', wg)}
      fn main(index : i32) {
        // Past 65535 rows tfjs spreads the dispatch over two dimensions and may launch a few
        // workgroups too many: those recompute the last row (same values), keeping every thread
        // in the uniform control flow the barriers need.
        let row = min(index / WG, uniforms.outShape[0] - 1);
        let tid = i32(localId.x);
        let cols = uniforms.outShape[1];
        ${body}
      }`,
  };
}

const ELEMENTWISE_WG = 256;

/** A program with one thread per output element (`index` is the flat index into every input). */
export function elementwiseProgram(key: string, variableNames: string[], shape: number[], body: string, uniforms?: string): WebGpuProgram {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    variableNames,
    outputShape: shape,
    shaderKey: `deltatune_${key}`,
    label: `deltatune_${key}`,
    dispatchLayout: { x: shape.map((_, i) => i) },
    dispatch: [Math.ceil(size / ELEMENTWISE_WG), 1, 1],
    workgroupSize: [ELEMENTWISE_WG, 1, 1],
    size: true,
    uniforms,
    getUserCode: () => `
      fn main(index : i32) {
        if (index >= uniforms.size) { return; }
        ${body}
      }`,
  };
}

/** WGSL helpers shared by kernels: erf as tfjs computes it (A&S 7.1.26), a tanh safe for large inputs. */
export const WGSL_MATH = `
  fn erfApprox(x : f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-x * x));
  }
  fn tanhSafe(x : f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
  }`;

/** The same erf in JS, for the CPU twins. */
export function erfApprox(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return Math.sign(x) * (1 - poly * Math.exp(-x * x));
}
