import { availableParallelism } from 'node:os';

/** tfjs's wasm build starts 8 pthread workers: its products never use more threads than that. */
export const MAX_WASM_THREADS = 8;

/**
 * Threads a command computes on when `--threads` is not given: DELTATUNE_THREADS when set (the
 * test suite sets 1: its processes run side by side), else every core, up to tfjs's 8.
 */
export function defaultThreads(): number {
  const env = Number(process.env.DELTATUNE_THREADS);
  if (Number.isInteger(env) && env >= 1) return Math.min(env, MAX_WASM_THREADS);
  return Math.min(availableParallelism(), MAX_WASM_THREADS);
}

/** The cores shared out between `processes` workers started side by side: more threads than cores only contend. */
export function threadsEach(processes: number, threads = defaultThreads()): number {
  return Math.max(1, Math.floor(threads / Math.max(1, processes)));
}
