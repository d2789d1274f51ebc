import { countParameters, structureTree } from '@deltatune/core';
import { loadDeltas } from '../deltas';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { modelAndTokenizer, output, prepare, resolveModel } from '../context';
import { table } from '../progress';
import { attachMethods } from '../run-deltas';
import { RUN_FLAGS } from '../train-flags';
import { defineCommand } from './command';

const INSPECT_FLAGS = {
  model: flag({
    type: 'text',
    accepts: 'a Hugging Face model folder or hub id, or use-lite',
    help: 'the backbone to inspect',
    placeholder: 'MODEL',
  }),
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
  const { backbone, tokenizer } = modelAndTokenizer(await resolveModel(model, json), needsTokenizer);
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
      ) +
      deltas
        .filter((d) => d.sites.length > 0)
        .map((d) => `\n${d.name} (${d.method}) at ${d.sites.length} site${d.sites.length === 1 ? '' : 's'}: ${compactSites(d.sites)}`)
        .join(''),
  );
  for (const d of deltas) d.detach();
  backbone.dispose();
}

/**
 * Site names with the layer number folded, in shell brace notation so each still reads as the
 * Hugging Face name it expands to: `model.layers.{0..31}.self_attn.q_proj`, `encoder.layer.{0,2}.attention.self.query`.
 */
function compactSites(names: readonly string[]): string {
  const groups = new Map<string, number[]>();
  for (const name of names) {
    const parts = name.split('.');
    const at = parts.findIndex((p) => /^\d+$/.test(p));
    // The layer number's place, marked with a character no site name holds.
    const key = at < 0 ? name : [...parts.slice(0, at), '\0', ...parts.slice(at + 1)].join('.');
    if (!groups.has(key)) groups.set(key, []);
    if (at >= 0) groups.get(key)!.push(Number(parts[at]));
  }
  return [...groups]
    .map(([key, layers]) => {
      if (layers.length === 0) return key;
      const sorted = [...new Set(layers)].sort((a, b) => a - b);
      const contiguous = sorted.every((n, i) => i === 0 || n === sorted[i - 1] + 1);
      const braces =
        sorted.length === 1
          ? String(sorted[0])
          : contiguous && sorted.length > 2
            ? `{${sorted[0]}..${sorted.at(-1)}}`
            : `{${sorted.join(',')}}`;
      return key.replace('\0', braces);
    })
    .join(', ');
}
