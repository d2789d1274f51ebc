import { BENCH_HELP, benchCommand } from './bench';
import { BENCH_FLAGS } from './bench-flags';
import { benchLlmCommand } from './bench-llm';
import { chatCommand } from './chat';
import { defineCommand, type Command } from './command';
import { demoCommand } from './demo';
import { evalCommand } from './eval';
import { experimentCommand } from './experiment';
import { forwardCommand } from './forward';
import { generateCommand } from './generate';
import { inspectCommand } from './inspect';
import { mergeCommand } from './merge';
import { trainCommand } from './train';
import { workerCommand } from './worker';

const bench = defineCommand({
  name: 'bench',
  summary: 'training-step benchmark (BERT-size, every method); not a test',
  about: BENCH_HELP,
  flags: BENCH_FLAGS,
  run: (flags) => benchCommand(flags),
});

/** Every command, in the order `deltatune --help` lists them. */
export const COMMANDS: readonly Command[] = [
  demoCommand,
  trainCommand,
  evalCommand,
  forwardCommand,
  generateCommand,
  chatCommand,
  inspectCommand,
  mergeCommand,
  experimentCommand,
  workerCommand,
  bench,
  benchLlmCommand,
];
