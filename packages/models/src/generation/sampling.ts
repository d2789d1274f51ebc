import { DeltaTuneError, type Rng } from '@deltatune/core';
import type { SamplingOptions } from './options';

/** Checks the options once, before any token: a bad value names itself, not a NaN later. */
export function checkSampling(o: SamplingOptions): void {
  const bad = (name: string, value: unknown, want: string) =>
    new DeltaTuneError(`${name} is ${String(value)}; it must be ${want}`, `give ${name} ${want}`);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature)))
    throw bad('temperature', o.temperature, 'a number >= 0');
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw bad('top-k', o.topK, 'a whole number >= 0');
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw bad('top-p', o.topP, 'a number in (0, 1]');
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty)))
    throw bad('repetition penalty', o.repetitionPenalty, 'a number > 0');
}

/** Sampling happens only when asked for and with a positive temperature; otherwise greedy. */
export function isSampling(o: SamplingOptions): boolean {
  return o.doSample === true && (o.temperature ?? 1) > 0;
}

/**
 * The next token of one row from its last-position logits (modified in place). Transformers'
 * order: the repetition penalty (CTRL: positive logits divided, negative multiplied, once per
 * distinct token already in the row), then greedy argmax, or temperature, top-k, top-p and a draw.
 */
export function nextToken(logits: Float32Array, history: readonly number[], o: SamplingOptions, rng: Rng): number {
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(history)) {
      if (id < 0 || id >= logits.length) continue;
      logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
    }
  }
  if (!isSampling(o)) return argmax(logits);
  const t = o.temperature ?? 1;
  // Candidates, most likely first: all tokens, or the top k (a partial sort is enough then).
  let order = rankedIds(logits, o.topK && o.topK > 0 ? Math.min(o.topK, logits.length) : logits.length);
  const scaled = order.map((id) => logits[id] / t);
  const top = scaled[0];
  const weights = scaled.map((x) => Math.exp(x - top));
  let sum = weights.reduce((a, w) => a + w, 0);
  const p = o.topP ?? 1;
  if (p < 1) {
    // The smallest prefix whose probability reaches p (at least one token).
    let kept = 0;
    let mass = 0;
    while (kept < weights.length && (kept === 0 || mass / sum < p)) mass += weights[kept++];
    order = order.slice(0, kept);
    weights.length = kept;
    sum = mass;
  }
  let u = rng.next() * sum;
  for (let i = 0; i < order.length; i++) {
    u -= weights[i];
    if (u < 0) return order[i];
  }
  return order[order.length - 1];
}

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** The `k` ids with the largest logits, largest first (ties: lower id first, as a stable sort gives). */
function rankedIds(logits: Float32Array, k: number): number[] {
  const byLogit = (a: number, b: number) => logits[b] - logits[a] || a - b;
  if (k >= logits.length / 4)
    return Array.from({ length: logits.length }, (_, i) => i)
      .sort(byLogit)
      .slice(0, k);
  // Few candidates: keep a sorted list of the best k seen so far.
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (best.length === k && logits[i] <= logits[best[k - 1]]) continue;
    let at = best.length;
    while (at > 0 && logits[best[at - 1]] < logits[i]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}
