import { countParameters, structureTree } from '@deltatune/core';
import { loadDeltas } from '../deltas';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { modelAndTokenizer, output, prepare } from '../context';
import { table } from '../progress';
import { attachMethods } from '../run-deltas';
import { RUN_FLAGS } from '../train-flags';
import { defineCommand } from './command';

const INSPECT_FLAGS = {
  model: flag({ type: 'text', accepts: 'a Hugging Face model folder, or use-lite', help: 'the backbone to inspect', placeholder: 'MODEL' }),
  method: RUN_FLAGS.method,
  opt: RUN_FLAGS.opt,
  delta: flag({ ...RUN_FLAGS.delta, help: 'a saved delta to attach' }),
  seed: RUN_FLAGS.seed,
  ...COMMON_FLAGS,
} as const;

export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'hook sites and parameter counts, with methods attached',
  about: `deltatune inspect --model <folder|use-lite> [--method NAME [--opt key=value]...]... [--delta DIR]...
  Prints the tree of hook sites (with what is attached where) and the parameter table.`,
  flags: INSPECT_FLAGS,
  listsMethods: 'methods for --method NAME, each with its options (--opt KEY=VALUE):',
  run: (flags) => inspect(flags),
});

async function inspect(flags: Flags<typeof INSPECT_FLAGS>): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.value('json');
  const model = flags.required('model', 'e.g. --model use-lite');
  const methods = flags.methods();
  const deltaDirs = flags.value('delta');
  const seed = flags.value('seed');
  const needsTokenizer = methods.some((m) => 'initText' in m.options);
  const { backbone, tokenizer } = modelAndTokenizer(model, needsTokenizer);
  const deltas = [...loadDeltas(backbone, deltaDirs), ...attachMethods(backbone, methods, seed, tokenizer)];
  const report = countParameters(backbone);
  const sites = backbone.sites.map((s) => ({
    name: s.name,
    kind: s.kind,
    layer: s.layer ?? null,
    hooks: backbone.hooks.ownersAt(s.kind, s.name),
  }));
  output(
    json,
    {
      backend,
      model,
      architecture: backbone.architecture,
      parameters: { base: report.base, total: report.total, trainable: report.trainable, trainablePercent: report.trainablePercent },
      deltas: report.deltas.map((d) => ({ ...d, sites: deltas.find((x) => x.name === d.name)?.sites ?? [] })),
      sites,
    },
    () =>
      structureTree(backbone) +
      '\n\n' +
      table(
        ['part', 'parameters', '% of base', 'trainable'],
        [
          ['backbone (frozen)', String(report.base), '100.000', 'no'],
          ...report.deltas.map((d) => [
            `${d.name} (${d.method})`,
            String(d.parameters),
            d.percentOfBase.toFixed(3),
            d.trainable ? 'yes' : 'no',
          ]),
          [
            'total',
            String(report.total),
            ((100 * report.total) / report.base).toFixed(3),
            `${report.trainable} (${report.trainablePercent.toFixed(3)}%)`,
          ],
        ],
      ),
  );
  for (const d of deltas) d.detach();
  backbone.dispose();
}
