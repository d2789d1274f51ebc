// Each fused kernel against its plain-ops reference at BERT-base training shapes, on one backend:
// mean milliseconds per call over queued calls (the device runs them in order; the last one's read
// waits for all). A kernel slower than its reference on a card shows here before it shows in a step.
//   node bench/kernels.mjs [--backend webgpu] [--batch 32] [--seq 128] [--reps 20] [--out kernels.json]
// Needs the packages built (npm run build). Not a test.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  attentionContext,
  attentionScores,
  attentionSoftmax,
  gelu,
  layerNorm,
  lowRankUpdate,
  setFusedKernels,
  FUSED_KERNELS,
} from '@deltatune/core';
import { adamwMoment, adamwParam, sumOfSquares } from '@deltatune/train';
import { selectBackend } from '@deltatune/backends';

const { values: a } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    batch: { type: 'string', default: '32' },
    seq: { type: 'string', default: '128' },
    reps: { type: 'string', default: '20' },
    out: { type: 'string' },
  },
});
const backend = await selectBackend(a.backend);
const [b, s, reps] = [Number(a.batch), Number(a.seq), Number(a.reps)];
const [heads, width, r] = [12, 768, 8];
const rows = b * s;
const randn = (shape, std = 1) => tf.randomNormal(shape, 0, std, 'float32', 1);
const q = randn([b, s, width]),
  k = randn([b, s, width]),
  x = randn([rows, width]),
  res = randn([rows, width]);
const scores = randn([b, heads, s, s], 4);
const p = tf.softmax(scores);
const mask = tf.ones([b, s], 'int32');
const [gamma, beta] = [tf.ones([width]), tf.zeros([width])];
const [h, loraB, dy] = [randn([rows, r]), randn([r, width], 0.02), randn([rows, width])];
const [ff, embeddings] = [randn([rows, 4 * width]), randn([30522, width], 0.02)];
const [param, grad, m, v, factor] = [
  randn([width, width]),
  randn([width, width]),
  randn([width, width], 0.01),
  tf.abs(randn([width, width], 0.01)),
  tf.scalar(1),
];
const step = { lr: 1e-4, c1: 0.1, c2: 0.001, epsilon: 1e-8, weightDecay: 0 };
const lowRank = (attrs, inputs) => tf.engine().runKernel(FUSED_KERNELS.lowRankUpdate, inputs, attrs);

// name -> [the fused call (on webgpu and cpu it runs the kernel), the plain-ops reference].
const cases = {
  'attention scores q k^T': [() => attentionScores(q, k, heads)],
  'attention context p v': [() => attentionContext(p, k, heads)],
  'attention context p^T x (gradient)': [() => attentionContext(p, k, heads, true)],
  'attention softmax (masked, scaled)': [() => attentionSoftmax(scores, mask, { heads, scale: 0.125, extra: 0, causal: false })],
  'add + layer norm': [() => layerNorm(x, gamma, beta, 1e-12, res)],
  'GELU (erf)': [() => gelu(ff, 'erf')],
  'LoRA update y + s h B': [() => lowRankUpdate(x, h, loraB, 2)],
  'LoRA dh = s dY B^T': [
    () => lowRank({ scale: 2, transposeA: false, transposeB: true }, { a: dy, b: loraB }),
    () => tf.mul(tf.matMul(dy, loraB, false, true), 2),
  ],
  'LoRA dB = s h^T dY': [
    () => lowRank({ scale: 2, transposeA: true, transposeB: false }, { a: h, b: dy }),
    () => tf.mul(tf.matMul(h, dy, true, false), 2),
  ],
  'AdamW moments + parameter (768 x 768)': [
    () => {
      const [m2, v2] = [adamwMoment(m, grad, factor, 0.9, false), adamwMoment(v, grad, factor, 0.999, true)];
      const out = adamwParam(param, m2, v2, factor, step);
      tf.dispose([m2, v2]);
      return out;
    },
  ],
  'sum of squares (LoRA A, 6,144)': [() => sumOfSquares(h)],
  'sum of squares (word embeddings, 23.4M)': [() => sumOfSquares(embeddings)],
};

async function time(f) {
  for (let i = 0; i < 2; i++) {
    const o = tf.tidy(f);
    await o.data();
    o.dispose();
  }
  const start = performance.now();
  const outs = [];
  for (let i = 0; i < reps; i++) outs.push(tf.tidy(f));
  await outs.at(-1).data();
  const ms = (performance.now() - start) / reps;
  tf.dispose(outs);
  return ms;
}

const results = [];
for (const [name, [fused, plain]] of Object.entries(cases)) {
  setFusedKernels(true);
  const fusedMs = await time(fused);
  setFusedKernels(false);
  const plainMs = await time(plain ?? fused);
  setFusedKernels(true);
  results.push({ kernel: name, fusedMs, plainMs, speedup: plainMs / fusedMs });
  console.error(`${name}: fused ${fusedMs.toFixed(3)} ms, plain ${plainMs.toFixed(3)} ms`);
}
const lines = [
  '| kernel | fused ms | plain ops ms | plain / fused |',
  '| --- | ---: | ---: | ---: |',
  ...results.map((x) => `| ${x.kernel} | ${x.fusedMs.toFixed(3)} | ${x.plainMs.toFixed(3)} | ${x.speedup.toFixed(2)} |`),
];
const report = { backend, batch: b, seq: s, reps, date: new Date().toISOString(), results };
if (a.out) writeFileSync(a.out, JSON.stringify(report, null, 2) + '\n');
console.log(`${backend}, batch ${b} x ${s}, BERT-base widths, mean of ${reps} queued calls\n\n${lines.join('\n')}`);
