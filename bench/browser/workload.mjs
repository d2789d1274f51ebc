// The measured workload, one module for both sides: Node imports it as it is, and page.ts bundles
// it with esbuild, so the page and Node run the same code on the same packages' dist builds. It
// gets its inputs as bytes and JSON (the caller reads them from disk or fetches them), so nothing
// here touches a file system.
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '@deltatune/backends';
import { attach } from '@deltatune/core';
import { lora } from '@deltatune/lora';
import { batchToTensors, disposeInputs, encodeBatch, SentencePieceTokenizer, useLiteFromGraph } from '@deltatune/models';
import { ClassificationHead, createTrainStep } from '@deltatune/train';

/** What every environment runs. The LoRA settings are the demo's (packages/cli/src/commands/demo.ts). */
export const SETTINGS = {
  batch: 32,
  seq: 64,
  warmup: 2,
  steps: 5,
  forwardReps: 5,
  learningRate: 2e-3,
  lora: { r: 8, alpha: 16, targets: ['query', 'value', 'output.dense', 'intermediate.dense'] },
  /** The product wasm-matmul.ts was measured at; timed plain and with transposeB (the patched path). */
  matmul: [2048, 512, 1536],
};

/** The symbol installWasmMatMul sets once its kernel replaces tfjs's BatchMatMul (packages/backends/src/wasm-matmul.ts). */
const MATMUL_PATCHED = Symbol.for('@deltatune/core/wasm-matmul');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Concatenates the weight shards in manifest order, as loadUseLite does in Node (packages/models/src/node.ts). */
export function concatShards(modelJson, shardBytes) {
  const names = modelJson.weightsManifest.flatMap((g) => g.paths);
  const out = new Uint8Array(names.reduce((n, name) => n + shardBytes.get(name).byteLength, 0));
  let at = 0;
  for (const name of names) {
    out.set(shardBytes.get(name), at);
    at += shardBytes.get(name).byteLength;
  }
  return out;
}

/** The backend, and what it runs with: which binary family, how many XNNPACK threads, whether the matmul patch is in. */
async function startBackend() {
  const backend = await selectBackend('wasm');
  const [simd, multithread] = await Promise.all([
    tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
  ]);
  return {
    backend,
    simd,
    multithread,
    // tfjs picks the binary from these two flags (backend_wasm.js getPathToWasmBinary).
    binary: simd && multithread ? 'tfjs-backend-wasm-threaded-simd.wasm' : simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm',
    threads: getThreadsCount(),
    matmulPatched: globalThis[MATMUL_PATCHED] === true,
  };
}

/** Fixed-shape batches (padded to `seq`): every step has the same cost, whatever the texts' lengths. */
function makeBatches(tokenizer, texts, labels) {
  const { batch, seq, warmup, steps } = SETTINGS;
  const n = Math.floor(texts.length / batch);
  if (n < 1) throw new Error(`need at least ${batch} texts, got ${texts.length}`);
  return Array.from({ length: Math.min(n, warmup + steps) }, (_, i) => {
    const rows = texts.slice(i * batch, (i + 1) * batch);
    const encoded = encodeBatch(tokenizer, rows, { maxLength: seq, padding: 'max_length' });
    return { inputs: batchToTensors(encoded), labels: tf.tensor1d(labels.slice(i * batch, (i + 1) * batch), 'int32') };
  });
}

/** ms of `fn` (awaited), median over `reps` after one untimed call. */
async function timeMedian(reps, fn) {
  await fn();
  const ms = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return median(ms);
}

/** The wasm product alone, plain and transposed: shows whether the patched path (transpose + plain product) gains from threads. */
async function timeMatMul() {
  const [m, k, n] = SETTINGS.matmul;
  const a = tf.randomUniform([m, k]);
  const b = tf.randomUniform([k, n]);
  const bT = tf.randomUniform([n, k]);
  const run = (f) => async () => {
    const out = f();
    await out.data();
    out.dispose();
  };
  const plain = await timeMedian(
    5,
    run(() => tf.matMul(a, b)),
  );
  const transposedB = await timeMedian(
    5,
    run(() => tf.matMul(a, bT, false, true)),
  );
  tf.dispose([a, b, bT]);
  return { plain, transposedB };
}

/**
 * One LoRA training step per batch, as `deltatune bench` drives the trainer's own step, each step
 * awaited (on wasm a step's work is synchronous anyway). Returns per-step ms after warm-up.
 */
async function timeTraining(backbone, batches) {
  const head = new ClassificationHead(backbone.hiddenSize, ['ham', 'spam'], 0);
  const delta = attach(backbone, lora(SETTINGS.lora), 'lora');
  const { warmup, steps } = SETTINGS;
  const trainStep = createTrainStep({
    backbone,
    head,
    deltas: [delta],
    learningRate: SETTINGS.learningRate,
    schedule: 'constant',
    totalSteps: warmup + steps + 1,
  });
  const ms = [];
  const losses = [];
  for (let i = 0; i < warmup + steps; i++) {
    const batch = batches[i % batches.length];
    const t = performance.now();
    losses.push(await trainStep.queue(batch).loss);
    if (i >= warmup) ms.push(performance.now() - t);
  }
  const trainable = trainStep.trainedParameters;
  trainStep.dispose();
  head.dispose();
  delta.detach();
  return { ms, losses, trainable };
}

/** Inference of one batch: the frozen backbone and a head, no gradients. */
async function timeForward(backbone, batch) {
  const head = new ClassificationHead(backbone.hiddenSize, ['ham', 'spam'], 0);
  const ms = await timeMedian(SETTINGS.forwardReps, async () => {
    const logits = tf.tidy(() => head.logits(backbone.forward(batch.inputs, { training: false }).pooled));
    await logits.data();
    logits.dispose();
  });
  head.dispose();
  return ms;
}

/**
 * The whole measurement. `modelJson`/`weightBytes`: USE-lite's model.json and its concatenated
 * shards; `vocab`: vocab.json; `texts`/`labels`: the emails. `overrides` change SETTINGS (a quick
 * check of the harness with fewer steps).
 */
export async function runWorkload({ modelJson, weightBytes, vocab, texts, labels }, overrides = {}) {
  Object.assign(SETTINGS, overrides);
  const env = await startBackend();
  const t0 = performance.now();
  const backbone = useLiteFromGraph(modelJson, weightBytes);
  const tokenizer = new SentencePieceTokenizer(vocab);
  const loadMs = performance.now() - t0;
  const batches = makeBatches(tokenizer, texts, labels);
  const matmulMs = await timeMatMul();
  const forwardMs = await timeForward(backbone, batches[0]);
  const train = await timeTraining(backbone, batches);
  for (const b of batches) {
    disposeInputs(b.inputs);
    b.labels.dispose();
  }
  backbone.dispose();
  const msPerStep = median(train.ms);
  return {
    ...env,
    loadMs,
    matmulMs,
    forwardMs,
    stepMs: train.ms,
    msPerStep,
    tokensPerSecond: (SETTINGS.batch * SETTINGS.seq) / (msPerStep / 1000),
    settings: { ...SETTINGS },
    losses: train.losses,
    trainableParameters: train.trainable,
  };
}
