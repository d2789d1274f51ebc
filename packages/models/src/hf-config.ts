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
