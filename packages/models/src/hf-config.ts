import { DeltaTuneError } from '@deltatune/core';

/** Reads a field of a Hugging Face config.json, with the error naming the field when it is absent. */
export function field<T>(config: Record<string, unknown>, name: string, fallback?: T): T {
  const v = config[name];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new DeltaTuneError(`config.json has no "${name}"`, `add "${name}" to config.json (see the model's Hugging Face card)`);
  }
  return v as T;
}

/** A config.json count (sizes, layers, heads): a whole number >= 1 (`min` 0 for ids), never a string. */
export function intField(config: Record<string, unknown>, name: string, fallback?: number, min = 1): number {
  const v = field<unknown>(config, name, fallback);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new DeltaTuneError(
      `config.json: "${name}" is ${JSON.stringify(v)}, not a whole number >= ${min}`,
      `set "${name}" to the value in the model's Hugging Face config.json`,
    );
  }
  return v;
}

/** A config.json real number above 0 (epsilons). */
export function positiveField(config: Record<string, unknown>, name: string, fallback?: number): number {
  const v = field<unknown>(config, name, fallback);
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
    throw new DeltaTuneError(
      `config.json: "${name}" is ${JSON.stringify(v)}, not a positive number`,
      `set "${name}" to the value in the model's Hugging Face config.json`,
    );
  }
  return v;
}

/** Attention splits the hidden size into heads: a remainder would silently drop dimensions. */
export function checkHeads(hidden: number, heads: number, names: [string, string]): void {
  if (hidden % heads !== 0) {
    throw new DeltaTuneError(
      `config.json: "${names[0]}" ${hidden} is not a multiple of "${names[1]}" ${heads}`,
      `use the model's own config.json (${names[0]} = heads x head size)`,
    );
  }
}

/** GELU forms deltatune computes: the exact (erf) one, and the tanh approximations. */
export const GELU_ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'];

export function activationField(config: Record<string, unknown>, name: string, fallback: string, allowed = GELU_ACTIVATIONS): string {
  const v = field<unknown>(config, name, fallback);
  if (typeof v !== 'string' || !allowed.includes(v)) {
    throw new DeltaTuneError(
      `config.json: "${name}" is ${JSON.stringify(v)}, which deltatune does not implement here`,
      `use one of ${allowed.join(', ')} (what these checkpoints use)`,
    );
  }
  return v;
}
