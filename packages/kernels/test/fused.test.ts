import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import {
  attentionContext,
  attentionScores,
  attentionSoftmax,
  createRng,
  dense,
  lowRankUpdate,
  gelu,
  layerNorm,
  normal,
  setFusedKernels,
  useFused,
  FUSED_KERNELS,
} from '@deltatune/core';
import { ATTENTION_SOFTMAX_GRAD, GELU_GRAD, LAYER_NORM_GRAD } from '@deltatune/kernels';
import { adamwMoment, adamwParam, sumOfSquares } from '@deltatune/train';
import { selectBackend } from '@deltatune/backends';
import { probeWebgpu } from '../../../test-webgpu';

/**
 * Each fused kernel against its plain-ops reference: the same function run with fused kernels on
 * and off, values and gradients. On the cpu backend (the kernels' JS twins) always; on webgpu (the
 * WGSL kernels) when this machine has an adapter (lavapipe in CI: scripts/install-lavapipe.sh).
 */
const webgpuMissing = await probeWebgpu();
const backends = ['cpu', ...(webgpuMissing ? [] : ['webgpu'])];
if (webgpuMissing) console.log(`fused kernels tested on cpu only: ${webgpuMissing}`);

afterAll(async () => {
  setFusedKernels(true);
  await selectBackend('wasm');
});

async function values(ts: tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
}

/** Runs `f` with fused kernels on and off on `backend`; returns the largest absolute difference. */
async function fusedVersusPlain(backend: string, f: () => tf.Tensor[]): Promise<number> {
  await selectBackend(backend as 'cpu' | 'webgpu' | 'wasm');
  const run = async (fused: boolean) => {
    setFusedKernels(fused);
    const outs = f();
    const data = await values(outs);
    tf.dispose(outs);
    return data;
  };
  const [plain, fused] = [await run(false), await run(true)];
  let max = 0;
  plain.forEach((p, i) => {
    expect(fused[i].length).toBe(p.length);
    for (let j = 0; j < p.length; j++) max = Math.max(max, Math.abs(p[j] - fused[i][j]));
  });
  return max;
}

const rng = createRng(7);
const randn = (shape: number[], std = 1) => normal(rng, shape, std);

/** The names of the kernels the engine ran for `f` (forward and backward), fused kernels on or off. */
async function kernelsRun(fused: boolean, f: () => tf.Tensor[]): Promise<Set<string>> {
  setFusedKernels(fused);
  try {
    const profile = await tf.profile(async () => {
      const outs = tf.tidy(f);
      await values(outs);
      tf.dispose(outs);
    });
    return new Set(profile.kernelNames);
  } finally {
    setFusedKernels(true);
  }
}
const deltatuneKernels = (names: Set<string>) => [...names].filter((k) => k.startsWith('Deltatune'));

/** A forward and backward pass of each fused op, and the deltatune kernels it must run when fused. */
const dispatchRng = createRng(11);
const r = (shape: number[]) => normal(dispatchRng, shape, 1);
const dispatchCases: Array<{ op: string; kernels: string[]; run: () => tf.Tensor[] }> = [
  {
    op: 'layer norm',
    kernels: [FUSED_KERNELS.layerNorm, LAYER_NORM_GRAD],
    run: () => {
      const [x, g, b] = [r([4, 130]), r([130]), r([130])];
      return [layerNorm(x, g, b, 1e-5), ...tf.grads((a: tf.Tensor) => tf.sum(tf.square(layerNorm(a, g, b, 1e-5))))([x])];
    },
  },
  {
    op: 'layer norm of x + residual',
    kernels: [FUSED_KERNELS.addLayerNorm, LAYER_NORM_GRAD],
    run: () => {
      const [x, res, g, b] = [r([4, 130]), r([4, 130]), r([130]), r([130])];
      return tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(layerNorm(a, g, b, 1e-5, c))))([x, res]);
    },
  },
  ...(['erf', 'tanh'] as const).map((form) => ({
    op: `FUSED_KERNELS.gelu (${form})`,
    kernels: [FUSED_KERNELS.gelu, GELU_GRAD],
    run: () => {
      const x = r([300]);
      return [gelu(x, form), tf.grad((a: tf.Tensor) => tf.sum(tf.square(gelu(a, form))))(x)];
    },
  })),
  {
    op: 'attention softmax',
    kernels: [FUSED_KERNELS.attentionSoftmax, ATTENTION_SOFTMAX_GRAD],
    run: () => {
      const scores = r([2, 3, 5, 5]);
      const keyMask = tf.tensor2d(
        [
          [1, 1, 1, 1, 1],
          [1, 1, 1, 0, 0],
        ],
        [2, 5],
        'int32',
      );
      const o = { heads: 3, scale: 0.125, extra: 0, causal: true };
      return [tf.grad((a: tf.Tensor) => tf.sum(tf.square(attentionSoftmax(a, keyMask, o))))(scores)];
    },
  },
  {
    op: 'attention scores and context',
    kernels: [FUSED_KERNELS.attentionScores, FUSED_KERNELS.attentionContext],
    run: () => {
      const [q, k] = [r([2, 5, 3 * 8]), r([2, 6, 3 * 8])];
      return tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(attentionContext(tf.softmax(attentionScores(a, c, 3)), c, 3)))([q, k]);
    },
  },
  {
    op: 'dense',
    kernels: [FUSED_KERNELS.dense],
    run: () => {
      const [x, w, b] = [r([7, 20]), r([20, 30]), r([30])];
      return tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.square(dense(a, c, d))))([x, w, b]);
    },
  },
  {
    op: 'low-rank update',
    kernels: [FUSED_KERNELS.lowRankUpdate],
    run: () => {
      const [y, h, b] = [r([7, 30]), r([7, 3]), r([3, 30])];
      return tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.square(lowRankUpdate(a, c, d, 2))))([y, h, b]);
    },
  },
  {
    op: 'AdamW step and squared norm',
    kernels: [FUSED_KERNELS.sumOfSquares, FUSED_KERNELS.adamwMoment, FUSED_KERNELS.adamwParam],
    run: () => {
      const [p, g] = [r([3, 333]), r([3, 333])];
      const factor = tf.div(1, tf.add(tf.sqrt(sumOfSquares(g)), 1));
      const [m, v] = [adamwMoment(tf.zerosLike(p), g, factor, 0.9, false), adamwMoment(tf.zerosLike(p), g, factor, 0.999, true)];
      return [m, v, adamwParam(p, m, v, factor, { lr: 1e-2, c1: 0.1, c2: 0.001, epsilon: 1e-8, weightDecay: 0.01 })];
    },
  },
];

describe.each(backends)('fused kernels on %s', (backend) => {
  // Registered is not dispatched: an op that fell back to its plain reference would still pass
  // every fused-versus-plain comparison below (plain against plain). The profile says which ran.
  it.each(dispatchCases)('$op: a forward and backward pass runs its fused kernels, and none when turned off', async ({ kernels, run }) => {
    await selectBackend(backend as 'cpu' | 'webgpu' | 'wasm');
    const on = await kernelsRun(true, run);
    expect(
      kernels.filter((k) => !on.has(k)),
      `ran: ${[...on].join(', ')}`,
    ).toEqual([]);
    const off = await kernelsRun(false, run);
    expect(deltatuneKernels(off)).toEqual([]);
    expect(off.size).toBeGreaterThan(0);
  });

  it('dispatch to the fused kernel on this backend, and not when turned off', async () => {
    await selectBackend(backend as 'cpu' | 'webgpu' | 'wasm');
    const all = [
      FUSED_KERNELS.layerNorm,
      FUSED_KERNELS.addLayerNorm,
      FUSED_KERNELS.gelu,
      FUSED_KERNELS.attentionSoftmax,
      FUSED_KERNELS.attentionScores,
      FUSED_KERNELS.attentionContext,
      FUSED_KERNELS.dense,
      FUSED_KERNELS.lowRankUpdate,
      FUSED_KERNELS.sumOfSquares,
      FUSED_KERNELS.adamwMoment,
      FUSED_KERNELS.adamwParam,
    ];
    setFusedKernels(true);
    expect(all.filter((k) => !useFused(k))).toEqual([]);
    setFusedKernels(false);
    expect(all.filter(useFused)).toEqual([]);
    setFusedKernels(true);
  });

  it('layer norm: value and the gradients of x, gamma and beta (rows of 300: not a workgroup multiple)', async () => {
    const [x, gamma, beta, w] = [randn([2, 5, 300], 3), randn([300]), randn([300]), randn([2, 5, 300])];
    const diff = await fusedVersusPlain(backend, () => {
      const y = layerNorm(tf.add(x, 2), gamma, beta, 1e-12);
      const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(layerNorm(a, g, b, 1e-5), w)))([x, gamma, beta]);
      return [y, ...grads];
    });
    console.log(`${backend} layer norm max |fused - plain| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(2e-4);
  });

  it('layer norm of x + residual: value and the gradients of x, residual, gamma and beta', async () => {
    const [x, r, gamma, beta, w] = [randn([2, 5, 130], 3), randn([2, 5, 130]), randn([130]), randn([130]), randn([2, 5, 130])];
    const diff = await fusedVersusPlain(backend, () => {
      const y = layerNorm(x, gamma, beta, 1e-12, r);
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, g: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(layerNorm(a, g, c, 1e-5, b), w)))([
        x,
        r,
        gamma,
        beta,
      ]);
      return [y, ...grads];
    });
    console.log(`${backend} add + layer norm max |fused - plain| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(2e-4);
  });

  it.each(['erf', 'tanh'] as const)('GELU (%s): value and gradient, including large inputs', async (form) => {
    const x = tf.concat([randn([1000], 2), tf.tensor1d([-40, -9, 0, 9, 40])]);
    const w = randn([1005]);
    const diff = await fusedVersusPlain(backend, () => [gelu(x, form), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(gelu(a, form), w)))(x)]);
    console.log(`${backend} gelu ${form} max |fused - plain| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-5);
  });

  it.each([
    { causal: false, extra: 0 },
    { causal: true, extra: 0 },
    { causal: true, extra: 3 },
  ])('attention softmax (causal $causal, $extra prefix keys): value and the scores gradient, with padding', async ({ causal, extra }) => {
    const [b, heads, s] = [2, 3, 7];
    const scores = randn([b, heads, s, extra + s], 4);
    const keyMask = tf.tensor2d(
      [
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 0, 0, 0],
      ],
      [b, s],
      'int32',
    );
    const w = randn([b, heads, s, extra + s]);
    const o = { heads, scale: 0.125, extra, causal };
    const diff = await fusedVersusPlain(backend, () => [
      attentionSoftmax(scores, keyMask, o),
      tf.grad((a: tf.Tensor) => tf.sum(tf.mul(attentionSoftmax(a, keyMask, o), w)))(scores),
    ]);
    console.log(`${backend} attention softmax causal=${causal} extra=${extra} max |fused - plain| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-5);
  });

  // Small shapes fit in one 32 x 32 tile; the second set spans several, with ragged edges on every
  // axis (rows, columns and the inner sum: head size 40 is one full and one partial chunk).
  it.each([
    [2, 3, 5, 8, 4],
    [2, 2, 37, 70, 40],
  ])(
    "attention products in the projections' layout (b %i, heads %i, sq %i, sk %i, head size %i): scores, context and context transposed, values and gradients",
    async (b, heads, sq, sk, d) => {
      const [q, k, v, x] = [randn([b, sq, heads * d]), randn([b, sk, heads * d]), randn([b, sk, heads * d]), randn([b, sq, heads * d])];
      const p = tf.softmax(randn([b, heads, sq, sk]));
      const [ws, wc, wt] = [randn([b, heads, sq, sk]), randn([b, sq, heads * d]), randn([b, sk, heads * d])];
      const diff = await fusedVersusPlain(backend, () => [
        attentionScores(q, k, heads),
        attentionContext(p, v, heads),
        attentionContext(p, x, heads, true),
        ...tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attentionScores(a, c, heads), ws)))([q, k]),
        ...tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attentionContext(a, c, heads), wc)))([p, v]),
        ...tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attentionContext(a, c, heads, true), wt)))([p, x]),
      ]);
      console.log(`${backend} attention products max |fused - plain| ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-5);
    },
  );

  // 37 rows and 30 columns: B's gradient (a sum over rows split across lanes, 8 columns per
  // workgroup) has a ragged last column block and lanes with unequal row counts.
  it.each([8, 3])("dense (x W + b) and the low-rank update (y + s h B, rank %i): values and every input's gradient", async (rank) => {
    const [x, w, bias] = [randn([37, 20]), randn([20, 30]), randn([30])];
    const [y, h, b] = [randn([37, 30]), randn([37, rank]), randn([rank, 30])];
    const wt = randn([37, 30]);
    const diff = await fusedVersusPlain(backend, () => [
      dense(x, w, bias),
      ...tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(dense(a, c, d), wt)))([x, w, bias]),
      lowRankUpdate(y, h, b, 2),
      ...tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(lowRankUpdate(a, c, d, 2), wt)))([y, h, b]),
    ]);
    console.log(`${backend} dense and low-rank update max |fused - plain| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
  });

  it('squared norm of a large gradient (split over workgroups, then summed): relative to its size', async () => {
    const x = randn([200_003]);
    const diff = await fusedVersusPlain(backend, () => [tf.div(sumOfSquares(x), 200_003)]);
    console.log(`${backend} large sum of squares max relative |fused - plain| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-5);
  });

  it('AdamW: moments and parameter over four steps with a clip factor, one skipped (factor 0, NaN gradient), and the squared norm', async () => {
    const diff = await adamwAgainstPlain(backend);
    console.log(`${backend} AdamW max |fused - plain| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-5);
  });
});

/** Four AdamW steps (clip factors 1, 0.25, a skipped NaN step, 1) fused against plain ops: the largest difference. */
async function adamwAgainstPlain(backend: string): Promise<number> {
  const p0 = randn([3, 333]);
  const grads = [randn([3, 333]), randn([3, 333], 5), tf.fill([3, 333], NaN), randn([3, 333], 0.1)];
  return fusedVersusPlain(backend, () => {
    let [p, m, v] = [tf.clone(p0), tf.zerosLike(p0), tf.zerosLike(p0)];
    const norms: tf.Tensor[] = [];
    grads.forEach((g, i) => {
      const t = i + 1;
      const factor = tf.scalar([1, 0.25, 0, 1][i]);
      if (i !== 2) norms.push(sumOfSquares(g));
      const [m2, v2] = [adamwMoment(m, g, factor, 0.9, false), adamwMoment(v, g, factor, 0.999, true)];
      const p2 = adamwParam(p, m2, v2, factor, { lr: 1e-2, c1: 1 - 0.9 ** t, c2: 1 - 0.999 ** t, epsilon: 1e-8, weightDecay: 0.01 });
      tf.dispose([p, m, v, factor]);
      [p, m, v] = [p2, m2, v2];
    });
    // The norm is a sum over 999 squares: compare it relative to its size.
    return [p, m, v, ...norms.map((n) => tf.div(n, 1000))];
  });
}

describe('fused kernels on wasm', () => {
  const adamw = FUSED_KERNELS.adamwParam;
  it('only the AdamW ones are registered (JS loops on the heap); every other op runs its plain reference', async () => {
    await selectBackend('wasm');
    for (const { op, run, kernels } of dispatchCases) {
      const ran = deltatuneKernels(await kernelsRun(true, run));
      expect([...ran].sort(), op).toEqual(kernels.includes(adamw) ? [...kernels].sort() : []);
    }
  });

  it('AdamW on wasm: the plain ops (a select broadcast per tensor) and the heap loops agree over four steps, a skipped NaN one included', async () => {
    const diff = await adamwAgainstPlain('wasm');
    console.log(`wasm AdamW max |fused - plain| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-5);
  });
});
