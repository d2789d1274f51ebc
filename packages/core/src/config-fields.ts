import { DeltaTuneError } from './errors';
import { NUMBER_KINDS, type NumberKind } from './number-kinds';

// Readers for saved adapter_config.json fields. A saved file can hold anything JSON can, so a
// value of the wrong type is one error naming the field: never a TypeError, and never NaN that
// flows into the forward pass. Strings are not coerced ("4" is a hand-edit or a foreign writer's bug).
// Methods use them as `configFields.num(config, 'r', 'positiveInteger')`.

const FILE = 'adapter_config.json';

/** Numeric kinds a saved field can have: the same rules as options (number-kinds.ts). */
export type FieldKind = NumberKind;

const KINDS = NUMBER_KINDS;

/** A JSON value as a message shows it: short, and saying what kind of thing it is. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `the array ${clip(JSON.stringify(v))}`;
  if (typeof v === 'string') return `the string ${clip(JSON.stringify(v))}`;
  if (typeof v === 'object') return `the object ${clip(JSON.stringify(v))}`;
  return `${typeof v} ${String(v)}`;
}

export const clip = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}...` : s);

export function fieldError(key: string, problem: string, fix: string): DeltaTuneError {
  return new DeltaTuneError(`${FILE}: "${key}" ${problem}`, fix);
}

/** The config itself must be an object: `null`, an array or a number has no fields to read. */
export function configObject(config: unknown): Record<string, unknown> {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new DeltaTuneError(
      `${FILE} holds ${describe(config)}, not a JSON object`,
      'restore the file from where it came from, or save the delta again',
    );
  }
  return config as Record<string, unknown>;
}

/** PEFT writes `null` for an unset field, so absent and null mean the same. */
const absent = (v: unknown) => v === undefined || v === null;

export function num(c: Record<string, unknown>, key: string, kind: FieldKind, fallback?: number): number | undefined {
  const v = c[key];
  const { what, ok, example } = KINDS[kind];
  if (absent(v)) return fallback;
  const fix = `set "${key}" to ${what} such as ${example}`;
  if (typeof v === 'string')
    throw fieldError(key, `is the string ${clip(JSON.stringify(v))}; it must be ${what}`, `${fix} (a JSON number, no quotes)`);
  if (typeof v !== 'number') throw fieldError(key, `is ${describe(v)}, not ${what}`, fix);
  if (!ok(v)) throw fieldError(key, `is ${v}, not ${what}`, fix);
  return v;
}

export function requiredNum(c: Record<string, unknown>, key: string, kind: FieldKind): number {
  const v = num(c, key, kind);
  if (v === undefined)
    throw fieldError(key, c[key] === null ? 'is null' : 'is missing', `set "${key}" to ${KINDS[kind].what} such as ${KINDS[kind].example}`);
  return v;
}

export function bool(c: Record<string, unknown>, key: string, fallback?: boolean): boolean | undefined {
  const v = c[key];
  if (absent(v)) return fallback;
  if (typeof v !== 'boolean')
    throw fieldError(key, `is ${describe(v)}, not true or false`, `set "${key}" to true or false (JSON booleans, no quotes)`);
  return v;
}

export function oneOf<T extends string>(c: Record<string, unknown>, key: string, allowed: readonly T[], fallback?: T): T | undefined {
  const v = c[key];
  if (absent(v)) return fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw fieldError(
      key,
      `is ${describe(v)}, not one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`,
      `set "${key}" to one of ${allowed.join(', ')}`,
    );
  }
  return v as T;
}

export function strings(c: Record<string, unknown>, key: string): string[] | undefined {
  const v = c[key];
  if (absent(v)) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw fieldError(key, `is ${describe(v)}, not a list of names`, `set "${key}" to an array of strings, e.g. ["query", "value"]`);
  }
  return v;
}

/** PEFT's module selection: a list of names (matched as suffixes) or one string (a regex). */
export function namesOrRegex(c: Record<string, unknown>, key: string): string | string[] | undefined {
  const v = c[key];
  if (typeof v === 'string') {
    try {
      new RegExp(v);
    } catch {
      throw fieldError(
        key,
        `is the string ${clip(JSON.stringify(v))}, which is not a valid regular expression`,
        `fix the regex, or list the module names: ["query", "value"]`,
      );
    }
    return v;
  }
  if (absent(v) || (Array.isArray(v) && v.every((x) => typeof x === 'string'))) return (v as string[] | null) ?? undefined;
  throw fieldError(
    key,
    `is ${describe(v)}, not a string or a list of strings`,
    `set "${key}" to module names such as ["query", "value"], or to one regex string`,
  );
}

/** PEFT's `layers_to_transform`: one layer index or a list of them; absent means every layer. */
export function layersToTransform(c: Record<string, unknown>): number[] | undefined {
  const v = c.layers_to_transform;
  if (absent(v)) return undefined;
  const list = Array.isArray(v) ? v : [v];
  if (list.length > 0 && list.every((n) => Number.isInteger(n) && (n as number) >= 0)) return list as number[];
  throw fieldError(
    'layers_to_transform',
    `is ${describe(v)}, not a layer index or a list of them`,
    'set "layers_to_transform" to null (every layer), 0, or a list such as [0, 1]',
  );
}
