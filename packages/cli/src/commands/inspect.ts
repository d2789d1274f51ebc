import { countParameters, structureTree } from '@deltatune/core';
import { loadDeltas } from '../deltas';
import type { Flags } from '../args';
import { modelAndTokenizer, output, prepare } from '../context';
import { table } from '../progress';
import { attachMethods } from '../training-run';

export const INSPECT_HELP = `deltatune inspect --model <folder|use-lite> [--method NAME [--opt key=value]...]... [--delta DIR]...
  [--plugin PKG]... [--json]
  Prints the tree of hook sites (with what is attached where) and the parameter table.`;

export async function inspectCommand(flags: Flags): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.bool('json');
  const model = flags.required('model', 'e.g. --model use-lite');
  const methods = flags.methods();
  const deltaDirs = flags.all('delta');
  const seed = flags.number('seed', 0, 'integer');
  flags.finish();
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
