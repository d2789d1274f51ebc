import { attentionContext, attentionScores, FUSED_KERNELS } from '@deltatune/core';
import type { Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import {
  i32,
  registerGradientOnce,
  registerWebgpuAndCpu,
  type CpuBackendLike,
  type KernelArgs,
  type WebGpuBackendLike,
  type WebGpuProgram,
} from './program';

/**
 * The two products of attention, read and written in the `[batch, seq, heads * headDim]` layout
 * the projections produce. Plain ops split heads with a transpose per q, k and v, merge them back
 * with another, and transpose again for every gradient: 8 transposes per layer and step. Here the
 * head split is index arithmetic inside the kernel:
 * - scores `[b, h, sq, sk]` = q_h k_h^T (unscaled: the softmax kernel scales);
 * - context `[b, sq, h * d]` = p_h v_h, or with `transposed`, `[b, sk, h * d]` = p_h^T x_h.
 * Each one's gradient is the other (or itself transposed), so backward needs no new kernels.
 */
const ATTENTION_SCORES = FUSED_KERNELS.attentionScores;
const ATTENTION_CONTEXT = FUSED_KERNELS.attentionContext;

/**
 * How a tiled program reads one operand of `C[i][j] = sum_t A[i][t] B[t][j]` (per batch and head):
 * a WGSL index expression in `batch`, `h`, `bh` (batch * heads + h), the outer index (`i` of A,
 * `j` of B), `t` and the uniforms, and which of the two is contiguous in memory, so a tile's
 * global reads are coalesced whichever it is.
 */
interface TiledOperand {
  readonly name: string;
  readonly index: (outer: string, t: string) => string;
  readonly contiguous: 'outer' | 't';
}

const TILE = 32;
/** 8 x 8 threads, each accumulating a 4 x 4 block of the 32 x 32 output tile (as tfjs's own matmul). */
const TILE_THREADS = 64;
/** A tile row padded by one float: transposed stores hit distinct memory banks. */
const STRIDE = TILE + 1;

/**
 * A batched product per (batch, head) in 32 x 32 output tiles: each workgroup stages 32 x 32
 * blocks of A and B in workgroup memory (read once from global memory, coalesced) and each of its
 * 64 threads accumulates a 4 x 4 block of outputs from registers. A loop per output over global
 * memory (the first version) read K with a stride of the model width between neighbouring
 * threads; on lavapipe it was slower than tfjs's tiled matmul even with the head transposes that
 * one needs.
 */
function tiledProgram(
  key: string,
  a: TiledOperand,
  b: TiledOperand,
  outputShape: number[],
  outIndex: string,
  tiles: number,
): WebGpuProgram {
  const load = (operand: TiledOperand, tile: string, base: string, limit: string) => {
    const [outer, t] = operand.contiguous === 'outer' ? ['f', 's'] : ['s', 'f'];
    return `
          {
            let o = ${base} + ${outer};
            let t = t0 + ${t};
            var value = 0.0;
            if (o < ${limit} && t < uniforms.inner) { value = ${operand.name}[${operand.index('o', 't')}]; }
            ${tile}[${t} * ${STRIDE} + ${outer}] = value;
          }`;
  };
  return {
    variableNames: [a.name, b.name],
    outputShape,
    shaderKey: `deltatune_${key}`,
    label: `deltatune_${key}`,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [tiles, 1, 1],
    workgroupSize: [TILE_THREADS, 1, 1],
    uniforms: 'heads : i32, headDim : i32, width : i32, sq : i32, sk : i32, rows : i32, cols : i32, inner : i32, tiles : i32,',
    getUserCode: () => `
      var<workgroup> tileA : array<f32, ${TILE * STRIDE}>;
      var<workgroup> tileB : array<f32, ${TILE * STRIDE}>;
      fn main(index : i32) {
        let tid = i32(localId.x);
        let rowTiles = (uniforms.rows + ${TILE - 1}) / ${TILE};
        let colTiles = (uniforms.cols + ${TILE - 1}) / ${TILE};
        // Workgroups past the last tile (tfjs may launch a few when it spreads a large dispatch
        // over two dimensions) redo the last one: same values, and every thread reaches the barriers.
        let tile = min(index / ${TILE_THREADS}, uniforms.tiles - 1);
        let bh = tile / (rowTiles * colTiles);
        let batch = bh / uniforms.heads;
        let h = bh % uniforms.heads;
        let i0 = ((tile / colTiles) % rowTiles) * ${TILE};
        let j0 = (tile % colTiles) * ${TILE};
        // Thread (tx, ty) owns rows ty + 8m and columns tx + 8n, m, n < 4.
        let tx = tid % 8;
        let ty = tid / 8;
        var acc : array<vec4<f32>, 4>;
        for (var t0 = 0; t0 < uniforms.inner; t0 = t0 + ${TILE}) {
          for (var e = tid; e < ${TILE * TILE}; e = e + ${TILE_THREADS}) {
            let f = e % ${TILE};
            let s = e / ${TILE};
            ${load(a, 'tileA', 'i0', 'uniforms.rows')}
            ${load(b, 'tileB', 'j0', 'uniforms.cols')}
          }
          workgroupBarrier();
          for (var t = 0; t < ${TILE}; t = t + 1) {
            let bRow = t * ${STRIDE} + tx;
            let bv = vec4<f32>(tileB[bRow], tileB[bRow + 8], tileB[bRow + 16], tileB[bRow + 24]);
            for (var m = 0; m < 4; m = m + 1) { acc[m] = acc[m] + tileA[t * ${STRIDE} + ty + 8 * m] * bv; }
          }
          workgroupBarrier();
        }
        for (var m = 0; m < 4; m = m + 1) {
          let i = i0 + ty + 8 * m;
          for (var n = 0; n < 4; n = n + 1) {
            let j = j0 + tx + 8 * n;
            if (i < uniforms.rows && j < uniforms.cols) { setOutputAtIndex(${outIndex}, acc[m][n]); }
          }
        }
      }`,
  };
}

/** Runs a tiled product: `rows x cols` outputs per (batch, head) over an inner length. */
function runTiled(
  backend: unknown,
  program: (tiles: number) => WebGpuProgram,
  inputs: TensorInfo[],
  d: { b: number; heads: number; headDim: number; width: number; sq: number; sk: number; rows: number; cols: number; inner: number },
): TensorInfo {
  const tiles = d.b * d.heads * Math.ceil(d.rows / TILE) * Math.ceil(d.cols / TILE);
  const uniforms = [d.heads, d.headDim, d.width, d.sq, d.sk, d.rows, d.cols, d.inner, tiles].map(i32);
  return (backend as WebGpuBackendLike).runWebGPUProgram(program(tiles), inputs, 'float32', uniforms);
}

function scoresShape(q: TensorInfo, k: TensorInfo, heads: number) {
  const [b, sq, width] = q.shape;
  return { b, sq, sk: k.shape[1], width, headDim: width / heads };
}

// Index expressions: q, k, v and x are [b, s, heads * headDim]; p and the scores [b, heads, sq, sk].
const headColumn = (row: string, length: string, t: string) =>
  `(batch * uniforms.${length} + ${row}) * uniforms.width + h * uniforms.headDim + ${t}`;

function webgpuScores({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const heads = attrs!.heads as number;
  const { b, sq, sk, width, headDim } = scoresShape(inputs.q, inputs.k, heads);
  const q: TiledOperand = { name: 'q', index: (i, t) => headColumn(i, 'sq', t), contiguous: 't' };
  const k: TiledOperand = { name: 'k', index: (j, t) => headColumn(j, 'sk', t), contiguous: 't' };
  const program = (tiles: number) =>
    tiledProgram('attention_scores', q, k, [b, heads, sq, sk], '(bh * uniforms.sq + i) * uniforms.sk + j', tiles);
  return runTiled(backend, program, [inputs.q, inputs.k], { b, heads, headDim, width, sq, sk, rows: sq, cols: sk, inner: headDim });
}

function webgpuContext({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const heads = attrs!.heads as number;
  const transposed = attrs!.transposed as boolean;
  const [b, , sq, sk] = inputs.p.shape;
  const width = inputs.v.shape[2];
  const headDim = width / heads;
  // Plain: out [b, sq, width] = p v, summing over keys. Transposed: out [b, sk, width] = p^T x, over queries.
  const p: TiledOperand = transposed
    ? { name: 'p', index: (i, t) => `(bh * uniforms.sq + ${t}) * uniforms.sk + ${i}`, contiguous: 'outer' }
    : { name: 'p', index: (i, t) => `(bh * uniforms.sq + ${i}) * uniforms.sk + ${t}`, contiguous: 't' };
  const [rows, inner] = transposed ? (['sk', 'sq'] as const) : (['sq', 'sk'] as const);
  const v: TiledOperand = { name: 'v', index: (j, t) => headColumn(t, inner, j), contiguous: 'outer' };
  const program = (tiles: number) =>
    tiledProgram(`attention_context${transposed ? '_t' : ''}`, p, v, [b, transposed ? sk : sq, width], headColumn('i', rows, 'j'), tiles);
  const dims = { sq, sk };
  return runTiled(backend, program, [inputs.p, inputs.v], {
    b,
    heads,
    headDim,
    width,
    sq,
    sk,
    rows: dims[rows],
    cols: headDim,
    inner: dims[inner],
  });
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
  registerGradientOnce({
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
  registerGradientOnce({
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
