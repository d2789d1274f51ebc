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
      if (value === undefined || value.startsWith('--')) throw new DeltaTuneError(`--${name} needs a value`, `write --${name} VALUE`);
      flags.push({ name, value });
      i++;
    }
  }
  return { command, positional, flags };
}

/** Typed access to flags, with checks that say which flag is wrong. */
export class Flags {
  private readonly used = new Set<string>();
  constructor(private readonly args: ParsedArgs, private readonly command: string) {}

  all(name: string): string[] {
    this.used.add(name);
    return this.args.flags.filter((f) => f.name === name).map((f) => String(f.value));
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
    return v;
  }

  number(name: string): number | undefined;
  number(name: string, fallback: number): number;
  number(name: string, fallback?: number): number | undefined {
    const v = this.string(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new DeltaTuneError(`--${name} must be a number, got "${v}"`, `e.g. --${name} 8`);
    return n;
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
      throw new DeltaTuneError(`deltatune ${this.command} does not take ${unknown.map((u) => `--${u}`).join(', ')}`, `see deltatune ${this.command} --help`);
    }
  }
}
