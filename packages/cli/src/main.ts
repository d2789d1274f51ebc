import { DeltaTuneError } from '@deltatune/core';
import { Flags, parseArgs } from './args';
import { fromSystemError } from './system-errors';
import { CLI_VERSION } from './version';
import { BENCH_HELP, benchCommand } from './commands/bench';
import { DEMO_HELP, demoCommand } from './commands/demo';
import { EXPERIMENT_HELP, experimentCommand } from './commands/experiment';
import { EVAL_HELP, evalCommand } from './commands/eval';
import { FORWARD_HELP, forwardCommand } from './commands/forward';
import { INSPECT_HELP, inspectCommand } from './commands/inspect';
import { MERGE_HELP, mergeCommand } from './commands/merge';
import { TRAIN_HELP, trainCommand } from './commands/train';

const COMMANDS: Record<string, { run: (flags: Flags, positional: readonly string[]) => Promise<void>; help: string; summary: string }> = {
  demo: { run: demoCommand, help: DEMO_HELP, summary: 'the main job: USE-lite on spam, head-only baseline vs LoRA' },
  train: { run: trainCommand, help: TRAIN_HELP, summary: 'train deltas (and a task head) on a dataset' },
  eval: { run: evalCommand, help: EVAL_HELP, summary: 'evaluate a saved delta + head on a split' },
  forward: { run: forwardCommand, help: FORWARD_HELP, summary: 'run a backbone (with deltas) on inputs, write its outputs' },
  inspect: { run: inspectCommand, help: INSPECT_HELP, summary: 'hook sites and parameter counts, with methods attached' },
  merge: { run: mergeCommand, help: MERGE_HELP, summary: 'fold LoRA/BitFit deltas into a Hugging Face folder' },
  experiment: {
    run: experimentCommand,
    help: EXPERIMENT_HELP,
    summary: 'a grid of methods x tasks x seeds x budgets: table and plots, resumable',
  },
  bench: { run: benchCommand, help: BENCH_HELP, summary: 'training-step benchmark (BERT-size, every method); not a test' },
};

const BOOLEAN_FLAGS = new Set(['json', 'resume', 'merge', 'full', 'help', 'overwrite']);

export function usage(): string {
  return [
    'deltatune: parameter-efficient fine-tuning on TensorFlow.js',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(8)} ${c.summary}`),
    '',
    'deltatune <command> --help for its options',
  ].join('\n');
}

/**
 * A run too big for the memory at hand (a rank of 1e9, 100,000 virtual tokens) fails inside tfjs
 * or the wasm heap with an allocation error: a limit of this machine, not a bug.
 */
function outOfMemory(e: unknown): DeltaTuneError | undefined {
  const message = (e as Error)?.message ?? '';
  if (
    !/Invalid typed array length|Array buffer allocation failed|memory access out of bounds|out of memory|Cannot allocate Wasm memory/i.test(
      message,
    )
  )
    return undefined;
  return new DeltaTuneError(
    `ran out of memory (${message.split('\n')[0]})`,
    'make the run smaller: a lower --batch-size or --max-length, or a smaller delta (e.g. --opt r=8, virtualTokens=20)',
  );
}

/** Runs the CLI; returns the exit code. Errors of bad input are one line plus the fix, no stack. */
export async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json') || argv.includes('--json=true');
  try {
    const args = parseArgs(argv, BOOLEAN_FLAGS);
    if (args.command === '--version' || args.command === '-v') {
      process.stdout.write(`${CLI_VERSION}\n`);
      return 0;
    }
    if (!args.command || args.command === '--help' || args.command === '-h' || args.command === 'help') {
      process.stdout.write(usage() + '\n');
      return 0;
    }
    const command = COMMANDS[args.command];
    if (!command) throw new DeltaTuneError(`unknown command "${args.command}"`, `use one of: ${Object.keys(COMMANDS).join(', ')}`);
    if (args.flags.some((f) => f.name === 'help') || args.positional.includes('-h')) {
      process.stdout.write(command.help + '\n');
      return 0;
    }
    if (args.positional.length && args.command !== 'experiment') {
      throw new DeltaTuneError(
        `unexpected argument "${args.positional[0]}"`,
        `options are written --name value; see deltatune ${args.command} --help`,
      );
    }
    await command.run(new Flags(args, args.command), args.positional);
    return 0;
  } catch (e) {
    const user = e instanceof DeltaTuneError ? e : fromSystemError(e) ?? outOfMemory(e);
    if (user) {
      const what = user.message.split('\n')[0];
      process.stderr.write(`error: ${what}\n${user.fix ? `  fix: ${user.fix}\n` : ''}`);
      if (json) process.stdout.write(JSON.stringify({ error: what, fix: user.fix ?? null }, null, 2) + '\n');
      return 1;
    }
    if (process.env.DELTATUNE_DEBUG) throw e;
    const what = (e as Error).message?.split('\n')[0] ?? String(e);
    process.stderr.write(`error: ${what}\n  (an internal error: rerun with DELTATUNE_DEBUG=1 for the stack trace, and please report it)\n`);
    if (json) process.stdout.write(JSON.stringify({ error: what, fix: null, internal: true }, null, 2) + '\n');
    return 2;
  }
}
