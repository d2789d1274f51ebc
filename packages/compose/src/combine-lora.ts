import * as tf from '@tensorflow/tfjs-core';
import { addMany, createRng, DeltaTuneError, type Delta, type Rng } from '@deltatune/core';
import type * as LoraPackage from '@deltatune/lora';
import type { Composition } from './composition';
import {
  combineTaskTensors,
  resolvePrune,
  TASK_COMBINATIONS,
  type PruneOptions,
  type ResolvedPrune,
  type TaskCombination,
} from './merge-utils';
import { truncatedSvd } from './svd';

/** The SVD variants: the dense updates combined, then truncated to `rank`. `svd` is task arithmetic + SVD. */
const SVD_COMBINATIONS = ['svd', 'ties_svd', 'dare_linear_svd', 'dare_ties_svd', 'magnitude_prune_svd'] as const;

/** PEFT's `add_weighted_adapter` combination types. */
export const LORA_COMBINATIONS = ['cat', ...TASK_COMBINATIONS, ...SVD_COMBINATIONS] as const;
export type LoraCombination = (typeof LORA_COMBINATIONS)[number];

export interface CombineLorasOptions extends PruneOptions {
  readonly combination: LoraCombination;
  /** The SVD variants' rank; default the largest member rank (PEFT's `svd_rank`). */
  readonly rank?: number;
}

type SvdCombination = (typeof SVD_COMBINATIONS)[number];
const isSvd = (c: LoraCombination): c is SvdCombination => (SVD_COMBINATIONS as readonly string[]).includes(c);
/** `ties_svd` -> `ties`, `svd` -> `linear`: what the dense updates are combined with. */
const denseCombination = (c: SvdCombination): TaskCombination => (c === 'svd' ? 'linear' : (c.slice(0, -'_svd'.length) as TaskCombination));

/** @deltatune/lora, loaded when a combination is asked for: compose works without it otherwise. */
async function loraPackage(): Promise<typeof LoraPackage> {
  try {
    return await import('@deltatune/lora');
  } catch (e) {
    throw new DeltaTuneError(`combineLoras needs @deltatune/lora (${(e as Error).message.split('\n')[0]})`, 'npm install @deltatune/lora');
  }
}

interface Part {
  readonly a: tf.Variable;
  readonly b: tf.Variable;
  /** The member's weight times its scaling. */
  readonly f: number;
  /** Its weight alone (the SVD variants: the scaling is inside the dense update). */
  readonly w: number;
  readonly scale: number;
}

/**
 * One LoRA from several, as PEFT's `LoraModel.add_weighted_adapter` (`w_i` the weights, `s_i` the
 * scalings, A `[in, r]` and B `[r, out]` in tfjs layout):
 * - `cat`: A's (times `w_i s_i`) and B's concatenated, rank = sum of ranks; exactly `sum w_i s_i A_i B_i`.
 * - `linear`, `ties`, `dare_linear`, `dare_ties`, `magnitude_prune`: PEFT's merge of the A's with
 *   weights `sign(w_i s_i) sqrt(|w_i s_i|)` and, separately, of the B's with `sqrt(|w_i s_i|)`
 *   (equal ranks; the product has cross terms `A_i B_j`, as in PEFT). `density` (0, 1] is the
 *   fraction kept, `majoritySignMethod` the TIES sign election, `seed` DARE's masks.
 * - `svd`, `ties_svd`, `dare_linear_svd`, `dare_ties_svd`, `magnitude_prune_svd`: the dense updates
 *   `s_i A_i B_i` combined with weights `w_i` (task arithmetic, TIES, ... on `[in, out]`), then
 *   truncated to `rank` by SVD (A = U sqrt(S), B = sqrt(S) V^T); exact when `rank` covers the result.
 *   PEFT multiplies those weights by `s_i` again although `get_delta_weight` already holds it: the
 *   same result when every scaling is 1, `s_i` times less weight here otherwise.
 * As in PEFT, one LoRA alone is always combined `linear`. The result has scaling 1 (`alpha = r`)
 * and is added to the composition under `newName`.
 *
 * DARE draws one `createRng(seed)` stream: site by site (the first LoRA's site order), the A of
 * each member in `names` order, then each B (the SVD variants: each member's dense update), every
 * tensor in row-major order of the tfjs layout above (PEFT's files hold the transposes).
 */
// Async because most combinations read the factors to the CPU, and WebGPU in Node reads only asynchronously.
export async function combineLoras(
  composition: Composition,
  newName: string,
  names: readonly string[],
  weights: readonly number[],
  options: CombineLorasOptions = { combination: 'cat' },
): Promise<Delta> {
  if (names.length !== weights.length)
    throw new DeltaTuneError(`combineLoras: ${names.length} LoRAs but ${weights.length} weights`, 'give one weight per LoRA');
  if (!(LORA_COMBINATIONS as readonly string[]).includes(options.combination))
    throw new DeltaTuneError(
      `combineLoras: unknown combination "${String(options.combination)}"`,
      `use one of ${LORA_COMBINATIONS.join(', ')}`,
    );
  const requested = options.combination;
  const prune = checkOptions(requested, options);
  const members = names.map((n) => composition.member(n));
  for (const m of members)
    if (m.delta.method !== 'lora')
      throw new DeltaTuneError(`combineLoras: "${m.delta.name}" is ${m.delta.method}, not lora`, 'combine LoRA deltas only');
  const { lora, loraFactors } = await loraPackage();
  const factors = members.map((m) => loraFactors(m.delta));
  const sitePairs = factors.map((f) => f.sites);
  const sites = [...sitePairs[0].keys()];
  for (const p of sitePairs) {
    if (p.size !== sites.length || sites.some((s) => !p.has(s)))
      throw new DeltaTuneError('combineLoras: the LoRAs target different sites', 'combine LoRAs made with the same targets');
  }
  // PEFT's _check_add_weighted_adapter: a single adapter is only ever re-weighted.
  const combination: LoraCombination = names.length === 1 ? 'linear' : requested;
  const ranks = sitePairs.map((p) => p.get(sites[0])!.a.shape[1] as number);
  const factorWise = (TASK_COMBINATIONS as readonly string[]).includes(combination);
  const rank = combination === 'cat' ? ranks.reduce((a, b) => a + b, 0) : factorWise ? ranks[0] : (options.rank ?? Math.max(...ranks));
  if (factorWise && ranks.some((r) => r !== rank))
    throw new DeltaTuneError(
      `combineLoras ${combination} needs equal ranks, got ${ranks.join(', ')}`,
      'use combination "cat" or an SVD variant ("svd", "ties_svd"...)',
    );
  const spec = lora({ ...(members[0].spec.options as object), r: rank, alpha: rank, rsLoRA: false, targets: sites });
  const result = composition.add(newName, spec);
  try {
    await fill(loraFactors(result).sites, sites, sitePairs, factors, weights, combination, prune, rank);
  } catch (e) {
    composition.remove(newName);
    throw e;
  }
  return result;
}

/** Writes the combination into the new LoRA's factors, site by site. */
async function fill(
  target: LoraPackage.LoraFactors['sites'],
  sites: readonly string[],
  sitePairs: ReadonlyArray<LoraPackage.LoraFactors['sites']>,
  factors: readonly LoraPackage.LoraFactors[],
  weights: readonly number[],
  combination: LoraCombination,
  prune: ResolvedPrune | undefined,
  rank: number,
): Promise<void> {
  const rng = createRng(prune?.seed ?? 0);
  for (const site of sites) {
    const { a: outA, b: outB } = target.get(site)!;
    const parts: Part[] = sitePairs.map((p, i) => ({
      a: p.get(site)!.a,
      b: p.get(site)!.b,
      f: weights[i] * factors[i].scale,
      w: weights[i],
      scale: factors[i].scale,
    }));
    if (combination === 'cat') {
      tf.tidy(() => {
        outA.assign(
          tf.concat(
            parts.map((p) => tf.mul(p.a, p.f)),
            1,
          ),
        );
        outB.assign(
          tf.concat(
            parts.map((p) => p.b),
            0,
          ),
        );
      });
    } else if (combination === 'linear') {
      tf.tidy(() => {
        outA.assign(addMany(parts.map((p) => tf.mul(p.a, Math.sign(p.f) * Math.sqrt(Math.abs(p.f))))));
        outB.assign(addMany(parts.map((p) => tf.mul(p.b, Math.sqrt(Math.abs(p.f))))));
      });
    } else if (isSvd(combination)) {
      await svdVariant(parts, denseCombination(combination), prune!, rng, rank, outA, outB);
    } else {
      await factorVariant(parts, combination as TaskCombination, prune!, rng, outA, outB);
    }
  }
}

/** The prune options checked against what the combination reads (`cat` reads none of them). */
function checkOptions(combination: LoraCombination, options: CombineLorasOptions): ResolvedPrune | undefined {
  const { density, majoritySignMethod, seed } = options;
  if (options.rank !== undefined && !isSvd(combination))
    throw new DeltaTuneError(
      `combineLoras: ${combination} takes no rank (its rank is ${combination === 'cat' ? 'the sum of' : 'that of'} the LoRAs)`,
      'drop rank, or use an SVD variant ("svd", "ties_svd"...)',
    );
  if (options.rank !== undefined && !(Number.isInteger(options.rank) && options.rank > 0))
    throw new DeltaTuneError(`combineLoras: rank must be a whole number >= 1, got ${options.rank}`, 'e.g. rank 8');
  if (combination === 'cat') {
    if (density !== undefined || majoritySignMethod !== undefined || seed !== undefined)
      throw new DeltaTuneError(
        'combineLoras: cat takes no density, majoritySignMethod or seed',
        'drop them, or use ties, dare_* or magnitude_prune',
      );
    return undefined;
  }
  const base = isSvd(combination) ? denseCombination(combination) : (combination as TaskCombination);
  return resolvePrune(base, options, 'combineLoras', combination);
}

/** PEFT's `_generalized_task_arithmetic_weighted_adapter`: the A's, then the B's, each merged on its own. */
async function factorVariant(
  parts: readonly Part[],
  combination: TaskCombination,
  prune: ResolvedPrune,
  rng: Rng,
  outA: tf.Variable,
  outB: tf.Variable,
): Promise<void> {
  // The sign goes on A only: on both it would cancel.
  const weightsA = parts.map((p) => (p.f >= 0 ? 1 : -1) * Math.sqrt(Math.abs(p.f)));
  const weightsB = parts.map((p) => Math.sqrt(Math.abs(p.f)));
  const a = combineTaskTensors(await Promise.all(parts.map((p) => p.a.data())), weightsA, combination, prune, rng);
  const b = combineTaskTensors(await Promise.all(parts.map((p) => p.b.data())), weightsB, combination, prune, rng);
  tf.tidy(() => {
    outA.assign(tf.tensor(Float32Array.from(a), outA.shape));
    outB.assign(tf.tensor(Float32Array.from(b), outB.shape));
  });
}

/** PEFT's `_svd_generalized_task_arithmetic_weighted_adapter`: combine the dense updates, truncate by SVD. */
async function svdVariant(
  parts: readonly Part[],
  combination: TaskCombination,
  prune: ResolvedPrune,
  rng: Rng,
  rank: number,
  outA: tf.Variable,
  outB: tf.Variable,
): Promise<void> {
  const [m, n] = [parts[0].a.shape[0] as number, parts[0].b.shape[1] as number];
  const dense: Float64Array[] = [];
  for (const p of parts) dense.push(denseUpdate(await p.a.data(), await p.b.data(), m, p.a.shape[1] as number, n, p.scale));
  const values = combineTaskTensors(
    dense,
    parts.map((p) => p.w),
    combination,
    prune,
    rng,
  );
  const { u, s, vt } = truncatedSvd(values, m, n, rank);
  const root = Array.from(s, Math.sqrt);
  const aData = new Float32Array(m * rank).map((_, idx) => u[idx] * root[idx % rank]);
  const bData = new Float32Array(rank * n).map((_, idx) => vt[idx] * root[Math.floor(idx / n)]);
  tf.tidy(() => {
    outA.assign(tf.tensor2d(aData, [m, rank]));
    outB.assign(tf.tensor2d(bData, [rank, n]));
  });
}

/** `(A B) * scale` as PEFT's `get_delta_weight`, row-major `[m, n]`, in float64 (A `[m, r]`, B `[r, n]`). */
function denseUpdate(a: ArrayLike<number>, b: ArrayLike<number>, m: number, r: number, n: number, scale: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let k = 0; k < r; k++) {
      const x = a[i * r + k];
      if (x === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += x * b[k * n + j];
    }
  for (let i = 0; i < out.length; i++) out[i] *= scale;
  return out;
}
