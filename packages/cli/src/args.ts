import { DeltaTuneError } from '@deltatune/core';

/**
 * Command-line arguments in the order given: `--name value`, `--name=value`, or a bare `--flag`.
 * Order matters for `--method lora --opt r=8 --method bitfit`: each `--opt` belongs to the method
 * before it.
 */
export interface ParsedArgs {
  readonly command: string | undefined;
  readonly positional: string[];
  readonly flags: Array<{ name: string; value: string | true }>;
}

export function parseArgs(argv: readonly string[], booleanFlags: ReadonlySet<string>): ParsedArgs {
  const [command, ...rest] = argv;
  const positional: string[] = [];
  const flags: Array<{ name: string; value: string | true }> = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (eq > 0) flags.push({ name, value: arg.slice(eq + 1) });
    else if (booleanFlags.has(name)) flags.push({ name, value: true });
    else {
      const value = rest[i + 1];
      // A missing value is reported when the command reads the flag, so an unknown flag at the
      // end of the line is named as unknown, not as lacking a value.
      if (value === undefined || value.startsWith('--')) flags.push({ name, value: MISSING });
      else {
        flags.push({ name, value });
        i++;
      }
    }
  }
  return { command, positional, flags };
}

/** The value of a flag given without one (`--out` at the end of the line). */
const MISSING = '\u0000missing';

export type NumberKind = 'finite' | 'positive' | 'nonNegative' | 'positiveInteger' | 'nonNegativeInteger' | 'integer';

const NUMBER_KINDS: Record<NumberKind, { ok: (n: number) => boolean; what: string; example: (fallback?: number) => string }> = {
  finite: { ok: () => true, what: 'a number', example: (f) => String(f ?? 8) },
  positive: { ok: (n) => n > 0, what: 'a positive number', example: (f) => String(f && f > 0 ? f : 0.001) },
  nonNegative: { ok: (n) => n >= 0, what: 'a number >= 0', example: (f) => String(f ?? 0) },
  positiveInteger: { ok: (n) => Number.isInteger(n) && n > 0, what: 'a whole number >= 1', example: (f) => String(f && f > 0 ? f : 8) },
  nonNegativeInteger: { ok: (n) => Number.isInteger(n) && n >= 0, what: 'a whole number >= 0', example: (f) => String(f ?? 0) },
  integer: { ok: (n) => Number.isSafeInteger(n), what: 'a whole number', example: (f) => String(f ?? 0) },
};

/** Typed access to flags, with checks that say which flag is wrong. */
export class Flags {
  private readonly used = new Set<string>();
  constructor(private readonly args: ParsedArgs, private readonly command: string) {}

  all(name: string): string[] {
    this.used.add(name);
    const values = this.args.flags.filter((f) => f.name === name).map((f) => f.value);
    if (values.includes(MISSING)) throw new DeltaTuneError(`--${name} needs a value`, `write --${name} VALUE`);
    return values.map(String);
  }

  string(name: string): string | undefined;
  string(name: string, fallback: string): string;
  string(name: string, fallback?: string): string | undefined {
    const values = this.all(name);
    return values.length ? values[values.length - 1] : fallback;
  }

  required(name: string, hint: string): string {
    const v = this.string(name);
    if (v === undefined) throw new DeltaTuneError(`deltatune ${this.command} needs --${name}`, hint);
    if (v.trim() === '') throw new DeltaTuneError(`--${name} is empty`, hint);
    return v;
  }

  /**
   * A numeric flag, checked against `kind`: `--steps 2.5`, `--batch-size 0` or `--lr -1` are
   * refused here, naming the flag, rather than failing (or silently misbehaving) mid-run.
   */
  number(name: string, fallback?: undefined, kind?: NumberKind): number | undefined;
  number(name: string, fallback: number, kind?: NumberKind): number;
  number(name: string, fallback?: number, kind: NumberKind = 'finite'): number | undefined {
    const v = this.string(name);
    if (v === undefined) return fallback;
    const n = v.trim() === '' ? NaN : Number(v);
    const rule = NUMBER_KINDS[kind];
    if (!Number.isFinite(n) || !rule.ok(n))
      throw new DeltaTuneError(`--${name} must be ${rule.what}, got "${v}"`, `e.g. --${name} ${rule.example(fallback)}`);
    return n;
  }

  /** A flag with a fixed set of values. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const v = this.string(name, fallback);
    if (!(choices as readonly string[]).includes(v))
      throw new DeltaTuneError(`--${name} must be one of ${choices.join(', ')}, got "${v}"`, `e.g. --${name} ${fallback}`);
    return v as T;
  }

  bool(name: string): boolean {
    this.used.add(name);
    return this.args.flags.some((f) => f.name === name && f.value !== 'false');
  }

  /** `--method A --opt k=v --method B ...`: each method with the options that follow it. */
  methods(): Array<{ name: string; options: Record<string, string> }> {
    this.used.add('method');
    this.used.add('opt');
    const out: Array<{ name: string; options: Record<string, string> }> = [];
    for (const f of this.args.flags) {
      if ((f.name === 'method' || f.name === 'opt') && f.value === MISSING)
        throw new DeltaTuneError(`--${f.name} needs a value`, `write --${f.name} VALUE`);
      if (f.name === 'method') out.push({ name: String(f.value), options: {} });
      if (f.name === 'opt') {
        const current = out.at(-1);
        if (!current) throw new DeltaTuneError('--opt comes before any --method', 'write --method lora --opt r=8');
        const text = String(f.value);
        const eq = text.indexOf('=');
        if (eq <= 0) throw new DeltaTuneError(`--opt ${text} is not key=value`, 'e.g. --opt r=8');
        current.options[text.slice(0, eq)] = text.slice(eq + 1);
      }
    }
    return out;
  }

  /** Fails on flags the command does not know, naming them. */
  finish(): void {
    const unknown = [...new Set(this.args.flags.map((f) => f.name).filter((n) => !this.used.has(n)))];
    if (unknown.length) {
      throw new DeltaTuneError(
        `deltatune ${this.command} does not take ${unknown.map((u) => `--${u}`).join(', ')}`,
        `see deltatune ${this.command} --help`,
      );
    }
  }
}
