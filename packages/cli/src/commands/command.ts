import type { Flags } from '../args';
import type { FlagSchema } from '../command-line/flag-schema';

/** One `deltatune <name>` command: its flags, declared once for the parser, the command and `--help`. */
export interface Command<S extends FlagSchema = FlagSchema> {
  readonly name: string;
  /** One line for `deltatune --help`. */
  readonly summary: string;
  /** The top of `deltatune <name> --help`: how it is called and what it does; the flags follow, from `flags`. */
  readonly about: string;
  readonly flags: S;
  /**
   * For a command that attaches methods (`--method`, a grid's deltas): the heading under which its
   * help lists the registered methods and their options.
   */
  readonly listsMethods?: string;
  /** Words on the line that are not flags (experiment's grid file); without, one is refused. */
  readonly positional?: string;
  run(flags: Flags<S>, positional: readonly string[]): Promise<void>;
}

/** Declares a command, typing `run`'s flags from `flags`. */
export function defineCommand<const S extends FlagSchema>(command: Command<S>): Command<S> {
  return command;
}
