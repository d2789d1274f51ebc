import { parseArgs } from 'node:util';
import { DeltaTuneError } from '@deltatune/core';
import { closestFlag } from './closest-flag';
import { flagName, type FlagSchema, type FlagSpec } from './flag-schema';
import { isNumberKind, NUMBER_KINDS, readNumber } from './number-kinds';

/** A command line, split and checked against the command's flags. */
export interface ParsedLine {
  readonly positional: readonly string[];
  /**
   * Flags in the order given. Order matters for `--method lora --opt r=8 --method bitfit`: each
   * `--opt` belongs to the method before it. A switch's value is `true` or the `false` of `--json=false`.
   */
  readonly flags: ReadonlyArray<{ readonly name: string; readonly value: string | true }>;
  /** `--help` or `-h` was given: the line is not checked further (help is shown whatever else is on it). */
  readonly help: boolean;
}

type OptionToken = { kind: 'option'; name: string; rawName: string; value?: string; inlineValue?: boolean };

/**
 * Splits `args` with node's `parseArgs` (`--name value`, `--name=value`, switches, `-h`, `--`), then
 * checks every flag against `schema` before the command does any work: an unknown flag is named as
 * unknown (with the known one it is closest to), a missing value or one outside the flag's type is
 * refused naming the flag. parseArgs runs non-strict because its own errors name no fix.
 */
export function parseCommandLine(command: string, args: readonly string[], schema: FlagSchema): ParsedLine {
  const options = Object.fromEntries(
    Object.entries(schema).map(([name, spec]) => [
      name,
      {
        type: spec.type === 'switch' ? ('boolean' as const) : ('string' as const),
        multiple: !!spec.repeatable,
        ...(spec.short ? { short: spec.short } : {}),
      },
    ]),
  );
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  const positional = tokens.flatMap((t) => (t.kind === 'positional' ? [t.value] : []));
  const given = tokens.filter((t): t is OptionToken & typeof t => t.kind === 'option');
  const help = given.some((t) => t.name === 'help');
  if (help) return { positional, help, flags: given.map((t) => ({ name: t.name, value: t.value ?? true })) };

  const unknown = [...new Set(given.filter((t) => !Object.prototype.hasOwnProperty.call(schema, t.name)).map((t) => t.rawName))];
  // A hidden flag (one deltatune passes itself) is never suggested.
  if (unknown.length)
    throw unknownFlags(
      command,
      unknown,
      Object.keys(schema).filter((name) => !schema[name].hidden),
    );
  return { positional, help, flags: given.map((t) => ({ name: t.name, value: checkedValue(t, schema[t.name]) })) };
}

function unknownFlags(command: string, unknown: readonly string[], known: readonly string[]): DeltaTuneError {
  const names = known.map(flagName);
  const guesses = unknown.flatMap((u) => {
    const near = closestFlag(u, names);
    return near ? [`${near} for ${u}`] : [];
  });
  const help = `run deltatune ${command} --help for every flag it takes`;
  return new DeltaTuneError(
    `deltatune ${command} does not take ${unknown.join(', ')}`,
    guesses.length ? `write ${guesses.join(', ')}, or ${help}` : help,
  );
}

function checkedValue(token: OptionToken, spec: FlagSpec): string | true {
  const name = flagName(token.name);
  if (spec.type === 'switch') {
    if (token.value === undefined || token.value === 'true') return true;
    if (token.value === 'false') return 'false';
    throw new DeltaTuneError(`${name} is a switch and takes no value, got "${token.value}"`, `write ${name} alone (or ${name}=false)`);
  }
  const value = token.value;
  // parseArgs takes the next word as the value whatever it is; `--out --resume` is a forgotten value,
  // not a folder named "--resume". A negative number is a value (`--seed -1`), refused by its kind if need be.
  const forgotten = value === undefined || (!token.inlineValue && value.startsWith('-') && Number.isNaN(Number(value)));
  if (forgotten) {
    const fix = `write ${name} ${spec.placeholder ?? 'VALUE'}`;
    throw new DeltaTuneError(
      `${name} needs a value`,
      value === undefined ? fix : `${fix} (a value that starts with "-" goes after "=": ${name}=${value})`,
    );
  }
  if (isNumberKind(spec.type) && readNumber(value, spec.type) === undefined) {
    const rule = NUMBER_KINDS[spec.type];
    const fallback = typeof spec.default === 'number' ? spec.default : undefined;
    throw new DeltaTuneError(`${name} must be ${rule.what}, got "${value}"`, `e.g. ${name} ${rule.example(fallback)}`);
  }
  if (typeof spec.type === 'object' && !spec.type.choices.includes(value)) {
    throw new DeltaTuneError(
      `${name} must be one of ${spec.type.choices.join(', ')}, got "${value}"`,
      `e.g. ${name} ${spec.default ?? spec.type.choices[0]}`,
    );
  }
  return value;
}
