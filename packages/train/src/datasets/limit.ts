import type { Dataset } from './types';

/** Keeps at most `n` examples per split (after the deterministic shuffle), for quick runs. */
export function limitDataset<D extends Dataset<unknown>>(d: D, limits: { train?: number; validation?: number; test?: number }): D {
  const cap = <T>(xs: readonly T[], n?: number) => (n === undefined ? xs : xs.slice(0, n));
  return { ...d, train: cap(d.train, limits.train), validation: cap(d.validation, limits.validation), test: cap(d.test, limits.test) };
}
