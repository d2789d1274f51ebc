import { DeltaTuneError } from './errors';
import { NUMBER_KINDS, type NumberKind } from './number-kinds';
import { parseOptions, type OptionType } from './options';
import type { TargetPattern, Targeting } from './targeting';

/**
 * A method's options, declared once: each key's type, default and help. The schema gives the
 * TypeScript type (`OptionsOf<typeof schema>`), the CLI's `--opt key=value` parser, the check of
 * options passed in code, and the text `deltatune <command> --help` lists.
 */
export interface OptionField<V = unknown, HasDefault extends boolean = boolean> {
  readonly type: OptionType;
  readonly help: string;
  readonly default?: V;
  /** Type-level only: the value type and whether a default exists. */
  readonly __value?: V;
  readonly __hasDefault?: HasDefault;
}

type ValueOfType<T> = T extends NumberKind
  ? number
  : T extends 'boolean'
    ? boolean
    : T extends 'string'
      ? string
      : T extends 'strings'
        ? readonly string[]
        : T extends 'indices'
          ? readonly number[]
          : T extends 'layers'
            ? NonNullable<Targeting['layers']>
            : T extends { readonly each: readonly (infer E)[] }
              ? readonly E[]
              : T extends readonly (infer E)[]
                ? E
                : unknown;

/** One option: `option('positiveInteger', 'Rank of the update', 8)`; without a default it is optional. */
export function option<const T extends OptionType>(type: T, help: string): OptionField<ValueOfType<T>, false>;
export function option<const T extends OptionType>(type: T, help: string, fallback: ValueOfType<T>): OptionField<ValueOfType<T>, true>;
export function option(type: OptionType, help: string, ...fallback: unknown[]): OptionField {
  return fallback.length ? { type, help, default: fallback[0] } : { type, help };
}

type Fields = Readonly<Record<string, OptionField>>;
type ValueOf<F> = F extends OptionField<infer V> ? V : never;
type Required<S> = { [K in keyof S]: S[K] extends OptionField<unknown, true> ? K : never }[keyof S];

/** The options a schema describes, defaults applied: keys with a default are always present. */
export type OptionsOf<S extends Fields | OptionSchema<any>> =
  S extends OptionSchema<infer O>
    ? O
    : { readonly [K in Required<S>]: ValueOf<S[K]> } & { readonly [K in Exclude<keyof S, Required<S>>]?: ValueOf<S[K]> };

/** The targeting keys every site-selecting method shares (see `selectSites`). */
export const TARGETING_OPTIONS = {
  targets: option('strings', 'sites to act on: name suffixes, globs (*, **) or /regex/') as OptionField<
    TargetPattern | readonly TargetPattern[],
    false
  >,
  exclude: option('strings', 'sites to leave out, in the same forms as targets') as OptionField<
    TargetPattern | readonly TargetPattern[],
    false
  >,
  layers: option('layers', 'layer indices (0,2) or a range ({"from":0,"to":5})'),
} as const;

export interface OptionRow {
  readonly key: string;
  /** What the value must be, as an error would say it: "a positive integer", "one of none, all". */
  readonly accepts: string;
  readonly default?: string;
  readonly help: string;
}

export interface OptionSchema<O> {
  readonly method: string;
  readonly fields: Readonly<Record<string, OptionField>>;
  /** Every default, as `create()` fills them in. */
  readonly defaults: Partial<O>;
  /** CLI `--opt key=value` strings to typed options; an unknown key or a value outside its type is an error. */
  parse(raw: Readonly<Record<string, string>>): Partial<O>;
  /** Defaults applied and every given value checked (options passed in code get the CLI's checks). */
  resolve(options?: Partial<O>): O;
  /** One row per option, for help text. */
  describe(): OptionRow[];
}

const isIndex = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;

function accepts(type: OptionType): string {
  if (Array.isArray(type)) return `one of ${type.join(', ')}`;
  if (typeof type === 'object') return `a list of ${(type as { each: readonly string[] }).each.join(', ')}`;
  if (type in NUMBER_KINDS) return NUMBER_KINDS[type as NumberKind].what;
  const words: Record<string, string> = {
    boolean: 'true or false',
    string: 'a string',
    strings: 'a list of names',
    indices: 'a list of non-negative integers',
    layers: 'layer indices or a {"from","to"} range',
    any: 'any value',
  };
  return words[type as string] ?? String(type);
}

function example(type: OptionType): string {
  if (Array.isArray(type)) return String(type[0]);
  if (typeof type === 'object') return (type as { each: readonly string[] }).each[0];
  if (type in NUMBER_KINDS) return NUMBER_KINDS[type as NumberKind].example;
  return ({ boolean: 'true', indices: '101,2023', layers: '0,2', strings: 'query,value' } as Record<string, string>)[type as string] ?? 'x';
}

/** Whether a value given in code has the option's type (the CLI parser's rules, without string parsing). */
function valid(type: OptionType, v: unknown): boolean {
  if (Array.isArray(type)) return typeof v === 'string' && type.includes(v);
  if (typeof type === 'object') {
    const each = (type as { each: readonly string[] }).each;
    return Array.isArray(v) && v.every((x) => typeof x === 'string' && each.includes(x));
  }
  if (type in NUMBER_KINDS) return typeof v === 'number' && NUMBER_KINDS[type as NumberKind].ok(v);
  switch (type) {
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'strings': {
      const list = Array.isArray(v) ? v : [v];
      return list.every((x) => typeof x === 'string' || x instanceof RegExp);
    }
    case 'indices':
      return Array.isArray(v) && v.length > 0 && v.every(isIndex);
    case 'layers':
      if (Array.isArray(v)) return v.every(isIndex);
      if (v !== null && typeof v === 'object') {
        const r = v as Record<string, unknown>;
        return Object.keys(r).every((k) => (k === 'from' || k === 'to') && (r[k] === undefined || Number.isInteger(r[k])));
      }
      return false;
    default:
      return true;
  }
}

const shown = (v: unknown) => (typeof v === 'string' ? v : v instanceof RegExp ? String(v) : JSON.stringify(v));

/** Declares a method's options: `defineOptions('lora', { r: option('positiveInteger', 'rank', 8), ...TARGETING_OPTIONS })`. */
export function defineOptions<const S extends Fields>(method: string, fields: S): OptionSchema<OptionsOf<S>> {
  const defaults: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(fields)) if ('default' in f) defaults[k] = f.default;
  const types = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.type]));
  return {
    method,
    fields,
    defaults: defaults as Partial<OptionsOf<S>>,
    parse: (raw) => parseOptions<OptionsOf<S>>(method, raw, types),
    resolve(options = {}) {
      const out: Record<string, unknown> = { ...defaults };
      for (const [key, v] of Object.entries(options as Record<string, unknown>)) {
        const field = fields[key];
        if (!field) {
          throw new DeltaTuneError(`${method} has no option "${key}"`, `known options: ${Object.keys(fields).join(', ')}`);
        }
        if (v === undefined) continue;
        if (!valid(field.type, v)) {
          const what = accepts(field.type);
          throw new DeltaTuneError(`${method}: ${key} must be ${what}, got ${shown(v)}`, `e.g. --opt ${key}=${example(field.type)}`);
        }
        out[key] = v;
      }
      return out as OptionsOf<S>;
    },
    describe: () =>
      Object.entries(fields).map(([key, f]) => ({
        key,
        accepts: accepts(f.type),
        ...('default' in f && f.default !== undefined ? { default: shown(f.default) } : {}),
        help: f.help,
      })),
  };
}
