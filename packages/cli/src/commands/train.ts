import type { Flags } from '../args';
import { modelAndTokenizer, output, prepare, resolveModel } from '../context';
import { formatSeconds, table } from '../progress';
import { runOutputFromFlags, runSpecFromFlags, TRAIN_FLAGS } from '../train-flags';
import { runTraining } from '../training-run';
import { defineCommand } from './command';

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'train deltas (and a task head) on a dataset',
  about: `deltatune train --model <folder|use-lite> --dataset <name|file.jsonl|file.csv> [--method NAME [--opt key=value]...]...
  Trains the deltas of each --method (none: the head only; --full: every base parameter too) and writes
  --out: delta/ (deltas/ for several, head/ for none), metrics.json, curve.svg/png, and a checkpoint
  every --eval-every steps that --resume continues from.
  With --task sft, a .jsonl of {"prompt", "completion"} lines (plain text) or {"messages": [...]} lines (the
  model's chat template); the loss is on the completions / assistant turns only, metrics.json has the test
  completions' loss and perplexity, and samples.jsonl greedy replies to a few test prompts, before and after.`,
  flags: TRAIN_FLAGS,
  listsMethods: 'methods for --method NAME, each with its options (--opt KEY=VALUE):',
  run: (flags) => train(flags),
});

async function train(flags: Flags<typeof TRAIN_FLAGS>): Promise<void> {
  const spec = runSpecFromFlags(flags);
  const { backend } = await prepare(flags);
  const json = flags.value('json');
  const out = runOutputFromFlags(flags, spec, backend);
  const { backbone, tokenizer } = modelAndTokenizer(await resolveModel(spec.model, json), true);
  const summary = await runTraining(backbone, tokenizer!, spec, out);
  const lm = spec.train.task !== 'classification';
  output(
    json,
    { backend, ...summary },
    () =>
      table(
        ['method', 'trainable', 'trainable %', lm ? 'perplexity' : 'accuracy', 'macro-F1', 'time'],
        [
          [
            summary.method,
            String(summary.trainableParameters),
            summary.trainablePercent.toFixed(3),
            lm ? summary.perplexity!.toFixed(3) : summary.accuracy!.toFixed(4),
            summary.macroF1 === undefined ? '-' : summary.macroF1.toFixed(4),
            formatSeconds(summary.seconds),
          ],
        ],
      ) +
      `\nsaved: ${summary.savedTo}\ncurve: ${summary.charts.join(', ')}` +
      (summary.samples ? `\nsamples: ${summary.samples}` : ''),
  );
  backbone.dispose();
}
