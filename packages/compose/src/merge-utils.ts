import { DeltaTuneError, type Rng } from '@deltatune/core';

/**
 * PEFT's merge functions (`peft/utils/merge_utils.py`) on flat row-major arrays: the combinations
 * that take a stack of task tensors (one per member, same shape) and their weights. `linear` is
 * PEFT's `task_arithmetic`.
 */
export const TASK_COMBINATIONS = ['linear', 'ties', 'dare_linear', 'dare_ties', 'magnitude_prune'] as const;
export type TaskCombination = (typeof TASK_COMBINATIONS)[number];

/** How TIES elects each element's sign: by the sum of the values (`total`) or of their signs (`frequency`). */
export type MajoritySignMethod = 'total' | 'frequency';

export interface PruneOptions {
  /** Fraction of each task tensor kept, in (0, 1]: `ties`, `dare_*`, `magnitude_prune` (PEFT's `density`). 1 prunes nothing. */
  readonly density?: number;
  /** `ties` and `dare_ties` (PEFT's `majority_sign_method`); default `total`. */
  readonly majoritySignMethod?: MajoritySignMethod;
  /** `dare_*`: seed of the drop masks, drawn with `createRng` (mulberry32); default 0. */
  readonly seed?: number;
}

/** What a combination needs, checked: the options it does not use are refused rather than ignored. */
export interface ResolvedPrune {
  readonly density: number;
  readonly majoritySignMethod: MajoritySignMethod;
  readonly seed: number;
}

const PRUNES = (c: TaskCombination) => c !== 'linear';
const ELECTS = (c: TaskCombination) => c === 'ties' || c === 'dare_ties';
const DROPS = (c: TaskCombination) => c === 'dare_linear' || c === 'dare_ties';

/**
 * Checks `options` against `combination` (`where` names the caller in errors, `shown` how the user
 * wrote it: `ties_svd` for the SVD variants). PEFT takes `density` and `majority_sign_method` for
 * every type and ignores them where unused; here an option the combination does not read is an error.
 */
export function resolvePrune(
  combination: TaskCombination,
  options: PruneOptions,
  where: string,
  shown: string = combination,
): ResolvedPrune {
  const { density, majoritySignMethod, seed } = options;
  if (PRUNES(combination)) {
    if (density === undefined)
      throw new DeltaTuneError(`${where}: ${shown} needs a density (the fraction of each tensor kept)`, 'pass density in (0, 1], e.g. 0.5');
    if (!(typeof density === 'number' && density > 0 && density <= 1))
      throw new DeltaTuneError(`${where}: density must be in (0, 1], got ${density}`, 'e.g. density 0.5 (1 keeps everything)');
  } else if (density !== undefined)
    throw new DeltaTuneError(
      `${where}: ${shown} does not prune, so density (${density}) would be ignored`,
      'drop density, or use ties, dare_linear, dare_ties or magnitude_prune',
    );
  if (majoritySignMethod !== undefined) {
    if (!ELECTS(combination))
      throw new DeltaTuneError(
        `${where}: ${shown} elects no signs, so majoritySignMethod would be ignored`,
        'use it with ties or dare_ties only',
      );
    if (majoritySignMethod !== 'total' && majoritySignMethod !== 'frequency')
      throw new DeltaTuneError(`${where}: majoritySignMethod must be total or frequency, got ${String(majoritySignMethod)}`, 'e.g. total');
  }
  if (seed !== undefined) {
    if (!DROPS(combination))
      throw new DeltaTuneError(
        `${where}: ${shown} draws nothing at random, so seed would be ignored`,
        'use it with dare_linear or dare_ties only',
      );
    if (!Number.isSafeInteger(seed)) throw new DeltaTuneError(`${where}: seed must be a whole number, got ${seed}`, 'e.g. seed 0');
  }
  return { density: density ?? 1, majoritySignMethod: majoritySignMethod ?? 'total', seed: seed ?? 0 };
}

/**
 * PEFT's `magnitude_based_pruning`: keeps the `floor(density * n)` largest `|x|`, zeroes the rest.
 * PEFT's `torch.topk` leaves the choice among equal magnitudes unspecified; here the lower flat
 * (row-major) index is kept first. Density 1 returns the values unpruned, as PEFT's `prune` does.
 */
export function magnitudePrune(x: ArrayLike<number>, density: number): Float64Array {
  const out = Float64Array.from(x);
  const n = out.length;
  const k = Math.floor(density * n);
  if (density >= 1 || k >= n) return out;
  if (k === 0) return out.fill(0);
  const magnitude = out.map(Math.abs);
  // Typed arrays sort numerically: the k-th largest magnitude is the threshold.
  const threshold = Float64Array.from(magnitude).sort()[n - k];
  let equalKept = k;
  for (const m of magnitude) if (m > threshold) equalKept--;
  for (let i = 0; i < n; i++) {
    if (magnitude[i] > threshold) continue;
    if (magnitude[i] === threshold && equalKept > 0) equalKept--;
    else out[i] = 0;
  }
  return out;
}

/**
 * PEFT's `random_pruning` (DARE): each element kept with probability `density`, divided by
 * `density` when `rescale`. The mask is one `rng.next() < density` per element, in row-major order
 * (element 0 first), so a seed gives the same mask on every backend (PEFT draws with
 * `torch.bernoulli`). Density 1 draws nothing and returns the values, as PEFT's `prune` does.
 */
export function randomPrune(x: ArrayLike<number>, density: number, rng: Rng, rescale: boolean): Float64Array {
  const out = Float64Array.from(x);
  if (density >= 1) return out;
  for (let i = 0; i < out.length; i++) out[i] = rng.next() < density ? (rescale ? out[i] / density : out[i]) : 0;
  return out;
}

function weightedSum(tensors: readonly Float64Array[], weights: readonly number[]): Float64Array {
  const out = new Float64Array(tensors[0].length);
  tensors.forEach((t, j) => {
    for (let i = 0; i < out.length; i++) out[i] += weights[j] * t[i];
  });
  return out;
}

/**
 * PEFT's `calculate_majority_sign_mask` + `disjoint_merge`: per element, the sign whose total (or
 * count) over the unweighted tensors is larger (ties go to +), then the mean of the weighted values
 * that have that sign (zeros have none, so they do not count).
 */
function electAndMerge(tensors: readonly Float64Array[], weights: readonly number[], method: MajoritySignMethod): Float64Array {
  const out = new Float64Array(tensors[0].length);
  for (let i = 0; i < out.length; i++) {
    let magnitude = 0;
    for (const t of tensors) magnitude += method === 'total' ? t[i] : Math.sign(t[i]);
    const majority = magnitude >= 0 ? 1 : -1;
    let sum = 0;
    let kept = 0;
    tensors.forEach((t, j) => {
      if (Math.sign(t[i]) === majority) {
        sum += weights[j] * t[i];
        kept++;
      }
    });
    out[i] = sum / Math.max(kept, 1);
  }
  return out;
}

/**
 * One combined tensor from same-shape task tensors, as PEFT's `task_arithmetic`, `ties`,
 * `dare_linear`, `dare_ties` and `magnitude_prune`. Pruning comes first, each tensor in list order
 * (so `dare_*` draw tensor 0's mask, then tensor 1's...); float64 throughout.
 */
export function combineTaskTensors(
  tensors: readonly ArrayLike<number>[],
  weights: readonly number[],
  combination: TaskCombination,
  prune: ResolvedPrune,
  rng: Rng,
): Float64Array {
  const { density, majoritySignMethod } = prune;
  switch (combination) {
    case 'linear':
      return weightedSum(
        tensors.map((t) => Float64Array.from(t)),
        weights,
      );
    case 'magnitude_prune':
      return weightedSum(
        tensors.map((t) => magnitudePrune(t, density)),
        weights,
      );
    case 'ties':
      return electAndMerge(
        tensors.map((t) => magnitudePrune(t, density)),
        weights,
        majoritySignMethod,
      );
    case 'dare_linear':
      return weightedSum(
        tensors.map((t) => randomPrune(t, density, rng, true)),
        weights,
      );
    case 'dare_ties':
      return electAndMerge(
        tensors.map((t) => randomPrune(t, density, rng, true)),
        weights,
        majoritySignMethod,
      );
  }
}
