import * as tf from '@tensorflow/tfjs-core';
import { addMany, DeltaTuneError, type Delta } from '@deltatune/core';
import type * as LoraPackage from '@deltatune/lora';
import type { Composition } from './composition';
import { truncatedSvd } from './svd';

export type LoraCombination = 'cat' | 'svd' | 'linear';

/** @deltatune/lora, loaded when a combination is asked for: compose works without it otherwise. */
async function loraPackage(): Promise<typeof LoraPackage> {
  try {
    return await import('@deltatune/lora');
  } catch (e) {
    throw new DeltaTuneError(`combineLoras needs @deltatune/lora (${(e as Error).message.split('\n')[0]})`, 'npm install @deltatune/lora');
  }
}

/**
 * One LoRA whose update is the weighted sum of several: `dW = sum_i w_i * s_i * A_i B_i`, as
 * PEFT's `add_weighted_adapter`:
 * - `cat`: A's and B's concatenated, rank = sum of ranks; exact.
 * - `svd`: the summed update truncated to `rank` by SVD; exact when `rank` covers it.
 * - `linear`: A = sum sqrt(w_i s_i) A_i, B = sum sqrt(w_i s_i) B_i (equal ranks); equals the
 *   weighted sum only without cross terms (PEFT's `linear` has the same caveat).
 * The result has scaling 1 (`alpha = r`) and is added to the composition under `newName`.
 */
// Async because `svd` reads the summed update to the CPU, and WebGPU in Node reads only asynchronously.
export async function combineLoras(
  composition: Composition,
  newName: string,
  names: readonly string[],
  weights: readonly number[],
  options: { combination: LoraCombination; rank?: number } = { combination: 'cat' },
): Promise<Delta> {
  if (names.length !== weights.length)
    throw new DeltaTuneError(`combineLoras: ${names.length} LoRAs but ${weights.length} weights`, 'give one weight per LoRA');
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
  const ranks = sitePairs.map((p) => p.get(sites[0])!.a.shape[1] as number);
  const rank =
    options.combination === 'cat'
      ? ranks.reduce((a, b) => a + b, 0)
      : options.combination === 'linear'
        ? ranks[0]
        : (options.rank ?? Math.max(...ranks));
  if (options.combination === 'linear' && ranks.some((r) => r !== rank))
    throw new DeltaTuneError(`combineLoras linear needs equal ranks, got ${ranks.join(', ')}`, 'use combination "cat" or "svd"');
  const spec = lora({ ...(members[0].spec.options as object), r: rank, alpha: rank, rsLoRA: false, targets: sites });
  const result = composition.add(newName, spec);
  const target = loraFactors(result).sites;
  for (const site of sites) {
    const { a: outA, b: outB } = target.get(site)!;
    const parts = sitePairs.map((p, i) => ({ a: p.get(site)!.a, b: p.get(site)!.b, f: weights[i] * factors[i].scale }));
    if (options.combination === 'cat') {
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
    } else if (options.combination === 'linear') {
      tf.tidy(() => {
        outA.assign(addMany(parts.map((p) => tf.mul(p.a, Math.sign(p.f) * Math.sqrt(Math.abs(p.f))))));
        outB.assign(addMany(parts.map((p) => tf.mul(p.b, Math.sqrt(Math.abs(p.f))))));
      });
    } else {
      const delta = tf.tidy(() => addMany(parts.map((p) => tf.mul(tf.matMul(p.a, p.b), p.f))));
      const [m, n] = delta.shape as number[];
      const values = Float64Array.from(await delta.data());
      delta.dispose();
      const { u, s, vt } = truncatedSvd(values, m, n, rank);
      const root = Array.from(s, Math.sqrt);
      const aData = new Float32Array(m * rank).map((_, idx) => u[idx] * root[idx % rank]);
      const bData = new Float32Array(rank * n).map((_, idx) => vt[idx] * root[Math.floor(idx / n)]);
      tf.tidy(() => {
        outA.assign(tf.tensor2d(aData, [m, rank]));
        outB.assign(tf.tensor2d(bData, [rank, n]));
      });
    }
  }
  return result;
}
