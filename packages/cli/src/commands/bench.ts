import * as tf from '@tensorflow/tfjs-core';
import { attach, DeltaTuneError, encodeCheckpoint, getMethod, setFusedKernels, useFused, type Delta, FUSED_KERNELS } from '@deltatune/core';
import { BERT_BASE, randomBert, type BertConfig } from '@deltatune/models';
import { writeFileAtomic } from '@deltatune/node';
import { ClassificationHead, createTrainStep } from '@deltatune/train';
import type { Flags } from '../args';
import { checkOutFile } from '../out-file';
import { output, prepare } from '../context';
import { countDispatches } from '../dispatch-count';
import { table } from '../progress';

export const BENCH_HELP = `deltatune bench [--size base|small|tiny] [--batch 32] [--seq 128] [--steps 5] [--warmup 2]
  [--methods full,lora,adapter,bitfit,prefix] [--fused on|off|both] [--out results.json] [--backend ...] [--json]
  A training-step benchmark on a randomly initialised BERT (base: 110M parameters) with a
  classification head: ms/step (mean over --steps queued back to back, as the trainer runs them),
  host ms/step (JS time to queue one step), tokens/s, dispatches per step, peak memory, delta
  checkpoint size.
  --fused both runs each workload with deltatune's fused kernels and with plain tfjs ops.
  Not a test. On the CPU machines use --backend wasm --size small.`;

const SIZES: Record<string, BertConfig> = {
  base: BERT_BASE,
  small: { ...BERT_BASE, hiddenSize: 256, numLayers: 4, numHeads: 4, intermediateSize: 1024 },
  tiny: { ...BERT_BASE, hiddenSize: 64, numLayers: 2, numHeads: 2, intermediateSize: 256, vocabSize: 1000 },
};

/** The workloads of the PyTorch + peft side (bench/pytorch_peft.py uses the same settings). */
const WORKLOADS: Record<string, { method?: string; options?: Record<string, unknown> }> = {
  full: {},
  lora: { method: 'lora', options: { r: 8, alpha: 16, targets: ['query', 'value'] } },
  adapter: { method: 'adapter', options: { placement: 'houlsby', reductionFactor: 16 } },
  bitfit: { method: 'bitfit', options: {} },
  prefix: { method: 'prefix', options: { virtualTokens: 20 } },
};

export interface BenchRow {
  workload: string;
  /** Whether deltatune's fused kernels ran (they exist for webgpu and cpu; elsewhere plain ops run either way). */
  fused: boolean;
  trainableParameters: number;
  msPerStep: number;
  /**
   * Host time to queue one step (median): the JS that records its dispatches. On a GPU the device
   * works meanwhile; a step cannot take less than this.
   */
  hostMsPerStep: number;
  tokensPerSecond: number;
  /** GPU dispatches (webgpu) or working kernels (other backends) of one training step. */
  dispatchesPerStep: number;
  /** Every kernel tfjs ran in one step, no-op reshapes included (tf.profile's count). */
  kernelsPerStep: number;
  /** Dispatches of one step by kind, most first: where fusion pays. */
  dispatchKinds: Record<string, number>;
  /** Kernel time of one step by tfjs kernel name (a profiled step: timing each kernel slows it). */
  msByKernel: Record<string, number>;
  peakBytes: number;
  checkpointBytes: number;
}

export async function benchCommand(flags: Flags): Promise<void> {
  const { backend, threads } = await prepare(flags);
  const json = flags.bool('json');
  const size = flags.string('size', 'base');
  const config = SIZES[size];
  if (!config) throw new DeltaTuneError(`unknown --size ${size}`, `use ${Object.keys(SIZES).join(', ')}`);
  const batch = flags.number('batch', 32, 'positiveInteger');
  const seq = flags.number('seq', 128, 'positiveInteger');
  const steps = flags.number('steps', 5, 'positiveInteger');
  const warmup = flags.number('warmup', 2, 'nonNegativeInteger');
  const workloads = flags.string('methods', Object.keys(WORKLOADS).join(',')).split(',');
  const out = flags.string('out');
  if (out)
    checkOutFile(
      out,
      flags.bool('overwrite'),
      'deltatune bench',
      (j) =>
        Array.isArray(j.rows) &&
        typeof j.backend === 'string' &&
        j.rows.every((r: unknown) => !!r && typeof r === 'object' && 'msPerStep' in r),
    );
  const fusedFlag = flags.string('fused', 'on');
  flags.finish();
  if (seq > config.maxPositions)
    throw new DeltaTuneError(
      `--seq ${seq} is longer than the ${size} model's ${config.maxPositions} positions`,
      `use --seq ${config.maxPositions} or less`,
    );
  const fusedModes = ({ on: [true], off: [false], both: [false, true] } as Record<string, boolean[]>)[fusedFlag];
  if (!fusedModes) throw new DeltaTuneError(`unknown --fused ${fusedFlag}`, 'use on, off or both');
  for (const w of workloads)
    if (!WORKLOADS[w]) throw new DeltaTuneError(`unknown workload ${w}`, `use ${Object.keys(WORKLOADS).join(', ')}`);

  const backbone = randomBert(config, 0);
  const ids = tf.tensor2d(
    Int32Array.from({ length: batch * seq }, (_, i) => (i * 7919) % config.vocabSize),
    [batch, seq],
    'int32',
  );
  const inputs = { inputIds: ids, attentionMask: tf.ones([batch, seq], 'int32') };
  const labels = tf.tensor1d(
    Int32Array.from({ length: batch }, (_, i) => i % 2),
    'int32',
  );
  const rows: BenchRow[] = [];

  async function benchWorkload(name: string, fused: boolean): Promise<BenchRow> {
    const w = WORKLOADS[name];
    const delta: Delta | undefined = w.method ? attach(backbone, getMethod(w.method).create(w.options), name) : undefined;
    const head = new ClassificationHead(config.hiddenSize, ['a', 'b'], 0);
    // The trainer's own step (the same code, not a copy): what trains, gradients, the global-norm clip
    // folded into AdamW (a non-finite loss skips the update on the device), the loss read started
    // behind it. A constant learning rate: the schedule's value does not change what a step costs.
    const trainStep = createTrainStep({
      backbone,
      head,
      deltas: delta ? [delta] : [],
      fullFineTune: !w.method,
      learningRate: 1e-4,
      schedule: 'constant',
      totalSteps: warmup + steps + 1,
    });
    const step = (): Promise<number> => trainStep.queue({ inputs, labels }).loss;
    // Steps run as the trainer runs them, each queued before the previous one's loss is awaited.
    // Queueing is synchronous JS (tfjs records every dispatch then): its time is the host's share.
    const recordMs: number[] = [];
    const run = async (n: number) => {
      let previous: Promise<unknown> | undefined;
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const queued = step();
        recordMs.push(performance.now() - t);
        await previous;
        previous = queued;
      }
      await previous;
    };
    await run(warmup);
    recordMs.length = 0;
    const start = performance.now();
    await run(steps);
    const ms = (performance.now() - start) / steps;
    const hostMs = recordMs.sort((a, b) => a - b)[Math.floor(recordMs.length / 2)];
    const counted = await countDispatches(async () => {
      await step();
    });
    const checkpointBytes = delta
      ? (await encodeCheckpoint(delta.save()))['adapter_model.safetensors'].byteLength
      : [...backbone.parameters.values()].reduce((n, v) => n + v.size * 4, 0);
    const trainableParameters = trainStep.trainedParameters;
    trainStep.dispose();
    head.dispose();
    delta?.detach();
    return {
      workload: name,
      fused: fused && useFused(FUSED_KERNELS.layerNorm),
      trainableParameters,
      msPerStep: ms,
      hostMsPerStep: hostMs,
      tokensPerSecond: (batch * seq) / (ms / 1000),
      dispatchesPerStep: counted.dispatches,
      kernelsPerStep: counted.kernels,
      dispatchKinds: counted.byKind,
      msByKernel: counted.msByKernel,
      peakBytes: counted.peakBytes,
      checkpointBytes,
    };
  }

  for (const name of workloads) {
    for (const fused of fusedModes) {
      setFusedKernels(fused);
      rows.push(await benchWorkload(name, fused));
      if (!json)
        process.stderr.write(
          `  ${name}${fusedModes.length > 1 ? (fused ? ' (fused)' : ' (plain ops)') : ''}: ${rows.at(-1)!.msPerStep.toFixed(1)} ms/step\n`,
        );
    }
  }
  setFusedKernels(true);
  tf.dispose([ids, inputs.attentionMask, labels]);
  backbone.dispose();
  const meta = {
    backend,
    threads,
    size,
    batch,
    seq,
    steps,
    date: new Date().toISOString(),
    parameters: { hidden: config.hiddenSize, layers: config.numLayers, heads: config.numHeads },
  };
  const markdown = table(
    ['workload', 'fused', 'trainable params', 'ms/step', 'host ms/step', 'tokens/s', 'dispatches/step', 'peak MiB', 'checkpoint MiB'],
    rows.map((r) => [
      r.workload,
      r.fused ? 'yes' : 'no',
      String(r.trainableParameters),
      r.msPerStep.toFixed(1),
      r.hostMsPerStep.toFixed(1),
      r.tokensPerSecond.toFixed(0),
      String(r.dispatchesPerStep),
      (r.peakBytes / 2 ** 20).toFixed(1),
      (r.checkpointBytes / 2 ** 20).toFixed(3),
    ]),
  );
  if (out) writeFileAtomic(out, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
  output(
    json,
    { ...meta, rows },
    () =>
      `deltatune bench: ${backend}${backend === 'wasm' ? ` on ${threads} thread(s)` : ''}, BERT-${size}, batch ${batch} x ${seq} tokens, mean of ${steps} steps\n\n${markdown}`,
  );
}
