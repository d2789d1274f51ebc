import { DeltaTuneError } from './errors';
import { NUMBER_KINDS, type NumberKind } from './number-kinds';

export type { NumberKind };

/** Parses one CLI option value: numbers, booleans, JSON arrays/objects, comma lists, else the string. */
export function parseOptionValue(raw: string): unknown {
  const t = raw.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (/^-?\d+(\.\d+)?(e-?\d+)?$/i.test(t)) return Number(t);
  if (t.startsWith('[') || t.startsWith('{')) {
    try {
      return JSON.parse(t);
    } catch {
      throw new DeltaTuneError(`option value ${t} is not valid JSON`, 'quote it as JSON, e.g. targets=["query","value"]');
    }
  }
  if (t.includes(','))
    return t
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return t;
}

/**
 * What one option accepts. The plain strings are the original vocabulary (third-party methods pass
 * them); `readonly string[]` is an enum, `{ each: [...] }` a list drawn from an enum, `layers` the
 * Targeting layer selection, `indices` a list of non-negative integers (token ids).
 */
export type OptionType =
  NumberKind | 'boolean' | 'string' | 'strings' | 'any' | 'layers' | 'indices' | readonly string[] | { readonly each: readonly string[] };

const isIndex = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0;

/** A CLI value for a list of non-negative integers: `3`, `0,2` (parsed as strings) or `[0,2]`. */
function asIndices(v: unknown): number[] | undefined {
  const list = Array.isArray(v) ? v : [v];
  const numbers = list.map((x) => (typeof x === 'string' && /^\d+$/.test(x) ? Number(x) : x));
  return numbers.every(isIndex) ? (numbers as number[]) : undefined;
}

/**
 * Turns `key=value` strings into typed options, checking keys against what the method knows.
 * `schema` maps each key to its expected type; an unknown key lists the known ones, and a value
 * outside its type is an error naming the option and the value.
 */
export function parseOptions<T>(
  method: string,
  raw: Readonly<Record<string, string>>,
  schema: Readonly<Record<string, OptionType>>,
): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!Object.prototype.hasOwnProperty.call(schema, key)) {
      throw new DeltaTuneError(`${method} has no option "${key}"`, `known options: ${Object.keys(schema).join(', ')}`);
    }
    out[key] = parseOne(method, key, value, schema[key]);
  }
  return out as Partial<T>;
}

export function parseOne(method: string, key: string, value: string, type: OptionType): unknown {
  const bad = (what: string, example: string) =>
    new DeltaTuneError(`${method} option ${key}=${value} is not ${what}`, `give ${key} ${what}, e.g. --opt ${key}=${example}`);
  if (type === 'string') return value;
  const v = parseOptionValue(value);
  if (typeof type !== 'string') {
    const allowed = Array.isArray(type) ? (type as readonly string[]) : (type as { each: readonly string[] }).each;
    const list = Array.isArray(type) ? [value.trim()] : Array.isArray(v) ? v : [v];
    const wrong = list.find((x) => typeof x !== 'string' || !allowed.includes(x));
    if (wrong !== undefined) {
      const what = Array.isArray(type) ? `one of ${allowed.join(', ')}` : `a list of ${allowed.join(', ')}`;
      throw bad(what, allowed[0]);
    }
    return Array.isArray(type) ? list[0] : list;
  }
  if (type in NUMBER_KINDS) {
    const kind = NUMBER_KINDS[type as NumberKind];
    // parseOptionValue leaves NaN, Infinity and "4x" as strings; 1e999 parses to Infinity.
    if (typeof v !== 'number' || !kind.ok(v)) throw bad(kind.what, kind.example);
    return v;
  }
  switch (type) {
    case 'boolean':
      if (typeof v !== 'boolean') throw bad('a boolean', 'true');
      return v;
    case 'strings': {
      const list = Array.isArray(v) ? v : [String(v)];
      if (!list.every((x) => typeof x === 'string')) throw bad('a list of names', `'["query","value"]'`);
      return list;
    }
    case 'indices': {
      const ids = asIndices(v);
      if (!ids || ids.length === 0) throw bad('a list of non-negative integers', '[101,2023]');
      return ids;
    }
    case 'layers': {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        const range = v as Record<string, unknown>;
        const keysOk = Object.keys(range).every((k) => k === 'from' || k === 'to');
        if (keysOk && ['from', 'to'].every((k) => range[k] === undefined || Number.isInteger(range[k]))) return range;
      } else {
        const ids = asIndices(v);
        if (ids && ids.length > 0) return ids;
      }
      throw bad('layer indices or a {"from","to"} range', '0,2');
    }
    default:
      return v;
  }
}
