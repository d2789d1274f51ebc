import { DeltaTuneError } from '@deltatune/core';
import { flagName, type FlagSchema, type FlagSpec, type FlagValue } from './command-line/flag-schema';
import { NUMBER_KINDS, isNumberKind, readNumber, type FlagNumberKind } from './command-line/number-kinds';
import type { ParsedLine } from './command-line/parse-line';
import type { MethodRequest } from './run-spec';

/**
 * A command's flags, read from a line `parseCommandLine` has checked against the command's schema:
 * `value(name)` gives a flag typed and defaulted as the schema declares it, so a default is written
 * once and `--help` shows the one the command uses. The readers that take their own fallback
 * (`string`, `number`, `choice`) are for commands that read flags by name (bench); a plain `Flags`
 * (schema `any`) is such a command's, and passes wherever a typed one is asked for.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class Flags<S extends FlagSchema = any> {
  constructor(
    private readonly line: ParsedLine,
    readonly command: string,
    private readonly schema: S,
  ) {}

  /** The flag's value: every value of a repeatable flag, a switch's state, else the last value given or the default. */
  value<K extends keyof S & string>(name: K): FlagValue<S[K]> {
    const spec = this.spec(name);
    if (spec.repeatable) return this.all(name) as FlagValue<S[K]>;
    if (spec.type === 'switch') return this.bool(name) as FlagValue<S[K]>;
    const given = this.last(name);
    if (given === undefined) return spec.default as FlagValue<S[K]>;
    // The parser checked the value against the flag's type already.
    return (isNumberKind(spec.type) ? Number(given) : given) as FlagValue<S[K]>;
  }

  /** Whether the flag is on the line at all. */
  given(name: string): boolean {
    this.spec(name);
    return this.line.flags.some((f) => f.name === name);
  }

  all(name: string): string[] {
    this.spec(name);
    return this.line.flags.filter((f) => f.name === name).map((f) => String(f.value));
  }

  string(name: string): string | undefined;
  string(name: string, fallback: string): string;
  string(name: string, fallback?: string): string | undefined {
    const spec = this.spec(name);
    return this.last(name) ?? fallback ?? (spec.default === undefined ? undefined : String(spec.default));
  }

  required(name: string, hint: string): string {
    const v = this.string(name);
    if (v === undefined) throw new DeltaTuneError(`deltatune ${this.command} needs ${flagName(name)}`, hint);
    if (v.trim() === '') throw new DeltaTuneError(`${flagName(name)} is empty`, hint);
    return v;
  }

  /** A numeric flag checked against `kind` (the schema's when not given), with its own fallback. */
  number(name: string, fallback?: undefined, kind?: FlagNumberKind): number | undefined;
  number(name: string, fallback: number, kind?: FlagNumberKind): number;
  number(name: string, fallback?: number, kind?: FlagNumberKind): number | undefined {
    const spec = this.spec(name);
    const rule = kind ?? (isNumberKind(spec.type) ? spec.type : 'finite');
    const v = this.last(name);
    if (v === undefined) return fallback ?? (typeof spec.default === 'number' ? spec.default : undefined);
    const n = readNumber(v, rule);
    if (n === undefined)
      throw new DeltaTuneError(
        `${flagName(name)} must be ${NUMBER_KINDS[rule].what}, got "${v}"`,
        `e.g. ${flagName(name)} ${NUMBER_KINDS[rule].example(fallback)}`,
      );
    return n;
  }

  /** A flag with a fixed set of values, with its own fallback. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const v = this.string(name, fallback);
    if (!(choices as readonly string[]).includes(v))
      throw new DeltaTuneError(`${flagName(name)} must be one of ${choices.join(', ')}, got "${v}"`, `e.g. ${flagName(name)} ${fallback}`);
    return v as T;
  }

  bool(name: string): boolean {
    this.spec(name);
    return this.line.flags.some((f) => f.name === name && f.value !== 'false');
  }

  /** `--method A --opt k=v --method B ...`: each method with the options that follow it. */
  methods(): MethodRequest[] {
    this.spec('method');
    this.spec('opt');
    const out: Array<{ name: string; options: Record<string, string> }> = [];
    for (const f of this.line.flags) {
      if (f.name === 'method') out.push({ name: String(f.value), options: {} });
      if (f.name !== 'opt') continue;
      const current = out.at(-1);
      if (!current) throw new DeltaTuneError('--opt comes before any --method', 'write --method lora --opt r=8');
      const text = String(f.value);
      const eq = text.indexOf('=');
      if (eq <= 0) throw new DeltaTuneError(`--opt ${text} is not key=value`, 'e.g. --opt r=8');
      current.options[text.slice(0, eq)] = text.slice(eq + 1);
    }
    return out;
  }

  /**
   * Kept for commands written against the earlier parser, which found unknown flags here: the line
   * is checked when it is parsed now, before the command runs, so there is nothing left to check.
   */
  finish(): void {}

  private last(name: string): string | undefined {
    const values = this.all(name);
    return values.length ? values[values.length - 1] : undefined;
  }

  /** A flag the command reads but does not declare would never be given (the parser refuses it): a bug, said plainly. */
  private spec(name: string): FlagSpec {
    const spec = this.schema[name];
    if (!spec) throw new Error(`deltatune ${this.command} reads --${name}, which its flag schema does not declare`);
    return spec;
  }
}
