import { DeltaTuneError } from './errors';

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
  if (t.includes(',')) return t.split(',').map((s) => s.trim()).filter(Boolean);
  return t;
}

/**
 * Turns `key=value` strings into typed options, checking keys against what the method knows.
 * `schema` maps each key to its expected type; an unknown key lists the known ones.
 */
export function parseOptions<T>(
  method: string,
  raw: Readonly<Record<string, string>>,
  schema: Readonly<Record<string, 'number' | 'boolean' | 'string' | 'strings' | 'any'>>,
): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    const type = schema[key];
    if (!type) {
      throw new DeltaTuneError(`${method} has no option "${key}"`, `known options: ${Object.keys(schema).join(', ')}`);
    }
    let v = parseOptionValue(value);
    if (type === 'strings' && !Array.isArray(v)) v = [String(v)];
    if (type === 'string') v = value;
    if ((type === 'number' && typeof v !== 'number') || (type === 'boolean' && typeof v !== 'boolean')) {
      throw new DeltaTuneError(`${method} option ${key}=${value} should be a ${type}`, `e.g. --opt ${key}=${type === 'number' ? '8' : 'true'}`);
    }
    out[key] = v;
  }
  return out as Partial<T>;
}
