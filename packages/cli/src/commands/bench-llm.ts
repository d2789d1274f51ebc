import * as tf from '@tensorflow/tfjs-core';
import { attach, DeltaTuneError, getMethod } from '@deltatune/core';
import { generate, randomLlama, SMOLLM2_135M_CONFIG } from '@deltatune/models';
import { writeFileAtomic } from '@deltatune/node';
import { createTrainStep } from '@deltatune/train';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { output, prepare } from '../context';
import { countDispatches } from '../dispatch-count';
import { checkOutFile } from '../out-file';
import { table } from '../progress';
import { defineCommand } from './command';

const BENCH_LLM_FLAGS = {
  'new-tokens': flag({
    type: 'text',
    accepts: 'a comma list of counts',
    help: 'generation lengths to time',
    placeholder: 'LIST',
    default: '16,64,256',
  }),
  prompt: flag({ type: 'positiveInteger', help: 'prompt tokens before generation', placeholder: 'N', default: 16 }),
  'no-cache-up-to': flag({
    type: 'nonNegativeInteger',
    help: 'time generation without the cache only up to this many new tokens (it is quadratic)',
    placeholder: 'N',
    default: 256,
  }),
  'sft-batch': flag({ type: 'positiveInteger', help: 'rows per LoRA SFT step', placeholder: 'N', default: 2 }),
  'sft-seq': flag({ type: 'positiveInteger', help: 'tokens per row of the SFT step', placeholder: 'N', default: 128 }),
  'sft-steps': flag({ type: 'nonNegativeInteger', help: 'timed SFT steps (0: skip the SFT step)', placeholder: 'N', default: 3 }),
  layers: flag({ type: 'positiveInteger', help: "layers of the random model (SmolLM2-135M's 30 by default)", placeholder: 'N' }),
  out: flag({ type: 'text', accepts: 'a .json file', help: 'where the results are written', placeholder: 'FILE' }),
  overwrite: flag({ type: 'switch', help: 'replace an --out file that bench-llm did not write' }),
  ...COMMON_FLAGS,
} as const;

export const benchLlmCommand = defineCommand({
  name: 'bench-llm',
  summary: 'decoder benchmark: generation tokens/s with and without the KV cache, a LoRA SFT step',
  about: `deltatune bench-llm [--new-tokens 16,64,256] [--prompt 16] [--sft-batch 2 --sft-seq 128 --sft-steps 3] [--backend ...] [--json]
  On a random Llama with SmolLM2-135M's config (30 layers, hidden 576, 9 heads / 3 key-value
  heads, vocabulary 49152, 135M parameters): greedy generation of each length from one prompt,
  with the key/value cache and recomputing the whole row each token; then a LoRA (r 8, q_proj and
  v_proj) causal-LM training step: tokens/s and peak tensor memory. Not a test.`,
  flags: BENCH_LLM_FLAGS,
  run: (flags) => benchLlm(flags),
});

interface GenerationRow {
  newTokens: number;
  cache: boolean;
  seconds: number;
  tokensPerSecond: number;
  msPerToken: number;
}

async function benchLlm(flags: Flags<typeof BENCH_LLM_FLAGS>): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.value('json');
  const lengths = flags
    .value('new-tokens')
    .split(',')
    .map((s) => Number(s.trim()));
  if (lengths.some((n) => !Number.isInteger(n) || n < 1))
    throw new DeltaTuneError(`--new-tokens ${flags.value('new-tokens')} is not a list of counts`, 'e.g. --new-tokens 16,64,256');
  const out = flags.value('out');
  if (out)
    checkOutFile(out, flags.value('overwrite'), 'deltatune bench-llm', (j) => Array.isArray(j.generation) && typeof j.backend === 'string');
  const config = { ...SMOLLM2_135M_CONFIG, ...(flags.value('layers') ? { num_hidden_layers: flags.value('layers') } : {}) };
  const log = (s: string) => !json && process.stderr.write(s + '\n');
  log('  building the random model...');
  const model = randomLlama(config, 0);
  const parameters = [...model.parameters.values()].reduce((n, v) => n + v.size, 0);
  const prompt = Array.from({ length: flags.value('prompt') }, (_, i) => (i * 7919 + 11) % config.vocab_size);
  // One untimed run compiles and allocates what the timed ones reuse.
  await generate(model, [prompt], { maxNewTokens: 4, padId: 0 });
  const generation: GenerationRow[] = [];
  for (const cache of [true, false]) {
    for (const n of lengths) {
      if (!cache && n > flags.value('no-cache-up-to')) continue;
      const start = performance.now();
      const [row] = await generate(model, [prompt], { maxNewTokens: n, padId: 0, useCache: cache });
      const seconds = (performance.now() - start) / 1000;
      if (row.newIds.length !== n) throw new Error(`generated ${row.newIds.length} tokens, not ${n}`);
      generation.push({ newTokens: n, cache, seconds, tokensPerSecond: n / seconds, msPerToken: (1000 * seconds) / n });
      log(`  ${cache ? 'cache   ' : 'no cache'} ${n} tokens: ${seconds.toFixed(2)} s, ${(n / seconds).toFixed(1)} tokens/s`);
    }
  }
  const sft =
    flags.value('sft-steps') > 0
      ? await sftStep(model, flags.value('sft-batch'), flags.value('sft-seq'), flags.value('sft-steps'))
      : undefined;
  if (sft)
    log(
      `  LoRA SFT step: ${sft.msPerStep.toFixed(0)} ms, ${sft.tokensPerSecond.toFixed(0)} tokens/s, peak ${(sft.peakBytes / 2 ** 20).toFixed(0)} MiB`,
    );
  model.dispose();
  const result = {
    backend,
    model: `random Llama, SmolLM2-135M config${flags.value('layers') ? ` with ${flags.value('layers')} layers` : ''}`,
    parameters,
    promptTokens: prompt.length,
    date: new Date().toISOString(),
    generation,
    sft,
  };
  if (out) writeFileAtomic(out, JSON.stringify(result, null, 2) + '\n');
  output(json, result, () => {
    const rows = generation.map((g) => [
      String(g.newTokens),
      g.cache ? 'yes' : 'no',
      g.seconds.toFixed(2),
      g.msPerToken.toFixed(1),
      g.tokensPerSecond.toFixed(1),
    ]);
    const gen = table(['new tokens', 'KV cache', 'seconds', 'ms/token', 'tokens/s'], rows);
    const step = sft
      ? `\n\nLoRA SFT step (r 8, q_proj+v_proj, ${sft.trainableParameters} trainable), batch ${sft.batch} x ${sft.seq}: ` +
        `${sft.msPerStep.toFixed(0)} ms/step, ${sft.tokensPerSecond.toFixed(0)} tokens/s, peak tensor memory ${(sft.peakBytes / 2 ** 20).toFixed(0)} MiB`
      : '';
    return `deltatune bench-llm: ${backend}, ${result.model} (${(parameters / 1e6).toFixed(1)}M parameters), prompt ${prompt.length} tokens\n\n${gen}${step}`;
  });
}

/** The trainer's own causal-LM step with a LoRA on q_proj/v_proj: ms/step over `steps` queued steps, peak memory of one. */
async function sftStep(model: ReturnType<typeof randomLlama>, batch: number, seq: number, steps: number) {
  const delta = attach(model, getMethod('lora').create({ r: 8, alpha: 16, targets: ['q_proj', 'v_proj'] }), 'lora');
  const ids = tf.tensor2d(
    Int32Array.from({ length: batch * seq }, (_, i) => (i * 7919) % model.vocabSize),
    [batch, seq],
    'int32',
  );
  const inputs = { inputIds: ids, attentionMask: tf.ones([batch, seq], 'int32') };
  const step = createTrainStep({
    backbone: model,
    task: 'lm',
    deltas: [delta],
    learningRate: 1e-4,
    schedule: 'constant',
    totalSteps: steps + 3,
  });
  try {
    await step.queue({ inputs }).loss; // warm-up
    const start = performance.now();
    let previous: Promise<number> | undefined;
    for (let i = 0; i < steps; i++) {
      const queued = step.queue({ inputs }).loss;
      await previous;
      previous = queued;
    }
    await previous;
    const msPerStep = (performance.now() - start) / steps;
    const counted = await countDispatches(async () => {
      await step.queue({ inputs }).loss;
    });
    return {
      batch,
      seq,
      trainableParameters: step.trainedParameters,
      msPerStep,
      tokensPerSecond: (batch * seq) / (msPerStep / 1000),
      peakBytes: counted.peakBytes,
    };
  } finally {
    step.dispose();
    tf.dispose([ids, inputs.attentionMask]);
    delta.detach();
  }
}
