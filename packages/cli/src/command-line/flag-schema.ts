import type { FlagNumberKind } from './number-kinds';

/**
 * What a flag's value must be: text, a switch (no value), a number of a kind, or one of fixed
 * choices. The parser checks it, `Flags.value` types it and `--help` describes it, from this one
 * declaration.
 */
export type FlagType = 'text' | 'switch' | FlagNumberKind | { readonly choices: readonly string[] };

export interface FlagSpec<V = unknown> {
  readonly type: FlagType;
  readonly help: string;
  /** The value's name in help: `--out DIR`. */
  readonly placeholder?: string;
  /** What a text value is, for help ("a folder", "a .jsonl or .csv file"); other types say it themselves. */
  readonly accepts?: string;
  readonly default?: string | number;
  /** How help shows a default that is worked out when the command runs ("the run's", "runs/<dataset>-<methods>-<time>"). */
  readonly defaultText?: string;
  /** Given several times, every value counts, in order (`--delta A --delta B`); otherwise the last one given does. */
  readonly repeatable?: boolean;
  /** Not listed in help: a flag deltatune passes to itself (experiment workers' `--shard`). */
  readonly hidden?: boolean;
  /** A one-letter alias: `-h`. */
  readonly short?: string;
  /** Type-level only: what `Flags.value` returns. */
  readonly __value?: V;
}

export type FlagSchema = Readonly<Record<string, FlagSpec>>;

type Declaration = Omit<FlagSpec, '__value'>;

type BaseValue<T> = T extends 'switch'
  ? boolean
  : T extends 'text'
    ? string
    : T extends { readonly choices: readonly (infer C)[] }
      ? C
      : number;

/** What reading a flag gives: every value of a repeatable one; a switch's state; else the value, or undefined without a default. */
export type DeclaredValue<D extends Declaration> = D extends { readonly repeatable: true }
  ? string[]
  : D['type'] extends 'switch'
    ? boolean
    : D extends { readonly default: string | number }
      ? BaseValue<D['type']>
      : BaseValue<D['type']> | undefined;

export type FlagValue<F> = F extends FlagSpec<infer V> ? V : never;

/** Declares a flag: `flag({ type: 'positiveInteger', help: 'examples per step', placeholder: 'N', default: 32 })`. */
export function flag<const D extends Declaration>(declaration: D): D & FlagSpec<DeclaredValue<D>> {
  return declaration as D & FlagSpec<DeclaredValue<D>>;
}

/** A flag as the user writes it: `--batch-size`. */
export const flagName = (name: string) => `--${name}`;
