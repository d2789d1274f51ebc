import { DeltaTuneError } from '@deltatune/core';
import { Flags } from './args';
import { commandHelp } from './command-line/command-help';
import { parseCommandLine } from './command-line/parse-line';
import { COMMANDS } from './commands/registry';
import { prepareMethods } from './methods';
import { fromSystemError } from './system-errors';
import { CLI_VERSION } from './version';

export function usage(): string {
  return [
    'deltatune: parameter-efficient fine-tuning on TensorFlow.js',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'deltatune <command> --help lists its flags (and, for those that attach methods, the methods and their options)',
  ].join('\n');
}

/**
 * A run too big for the memory at hand (a rank of 1e9, 100,000 virtual tokens) fails inside tfjs
 * or the wasm heap with an allocation error: a limit of this machine, not a bug.
 */
function outOfMemory(e: unknown): DeltaTuneError | undefined {
  const message = (e as Error)?.message ?? '';
  const allocationFailure =
    /Invalid typed array length|Array buffer allocation failed|memory access out of bounds|out of memory|Cannot allocate Wasm memory/i;
  if (!allocationFailure.test(message)) return undefined;
  return new DeltaTuneError(
    `ran out of memory (${message.split('\n')[0]})`,
    'make the run smaller: a lower --batch-size or --max-length, or a smaller delta (e.g. --opt r=8, virtualTokens=20)',
  );
}

/** Runs the CLI; returns the exit code. Errors of bad input are one line plus the fix, no stack. */
export async function main(argv: readonly string[]): Promise<number> {
  const json = argv.includes('--json') || argv.includes('--json=true');
  try {
    const [name, ...rest] = argv;
    if (name === '--version' || name === '-v') {
      process.stdout.write(`${CLI_VERSION}\n`);
      return 0;
    }
    // `deltatune help train` is `deltatune train --help`.
    if (name === 'help' && rest.length) return await main([rest[0], '--help']);
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(usage() + '\n');
      return 0;
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new DeltaTuneError(`unknown command "${name}"`, `use one of: ${COMMANDS.map((c) => c.name).join(', ')}`);
    const line = parseCommandLine(name, rest, command.flags);
    if (line.help) {
      // The methods a plugin on the same line registers are listed with the built-in ones.
      await prepareMethods(line.flags.filter((f) => f.name === 'plugin' && f.value !== true).map((f) => String(f.value)));
      process.stdout.write(commandHelp(command) + '\n');
      return 0;
    }
    if (line.positional.length && !command.positional) {
      throw new DeltaTuneError(
        `unexpected argument "${line.positional[0]}"`,
        `options are written --name value; see deltatune ${name} --help`,
      );
    }
    await command.run(new Flags(line, name, command.flags), line.positional);
    return 0;
  } catch (e) {
    const user = e instanceof DeltaTuneError ? e : (fromSystemError(e) ?? outOfMemory(e));
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
