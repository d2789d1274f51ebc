import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';

/**
 * The flags `deltatune bench` (bench.ts) reads, for the parser and `--help`. bench.ts reads them by
 * name with its own fallbacks, so a default changed there should change here too; a flag read there
 * and missing here fails every bench run with an internal error naming it.
 */
export const BENCH_FLAGS = {
  size: flag({
    type: 'text',
    accepts: 'base, small or tiny',
    help: 'the random BERT: base (110M parameters), small or tiny',
    placeholder: 'SIZE',
    default: 'base',
  }),
  batch: flag({ type: 'positiveInteger', help: 'examples per step', placeholder: 'N', default: 32 }),
  seq: flag({ type: 'positiveInteger', help: 'tokens per example', placeholder: 'N', default: 128 }),
  steps: flag({ type: 'positiveInteger', help: 'timed steps per workload', placeholder: 'N', default: 5 }),
  warmup: flag({ type: 'nonNegativeInteger', help: 'untimed steps first', placeholder: 'N', default: 2 }),
  methods: flag({
    type: 'text',
    accepts: 'a comma list of full, lora, adapter, bitfit, prefix',
    help: 'the workloads',
    placeholder: 'LIST',
    default: 'full,lora,adapter,bitfit,prefix',
  }),
  fused: flag({
    type: 'text',
    accepts: 'on, off or both',
    help: "with deltatune's fused kernels, with plain tfjs ops, or each workload both ways",
    placeholder: 'MODE',
    default: 'on',
  }),
  out: flag({ type: 'text', accepts: 'a .json file', help: 'where the rows are written', placeholder: 'FILE' }),
  overwrite: flag({ type: 'switch', help: 'replace an --out file that bench did not write' }),
  ...COMMON_FLAGS,
} as const;
