import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { createRng, defineDelta, ownedVariable, registerMethod, uniform, type Backbone, type Delta, type DeltaSpec } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { lora, loraFactors, loraMethod } from '@deltatune/lora';
import { bitfit, bitfitMethod } from '@deltatune/bitfit';
import { adapter, adapterMethod } from '@deltatune/adapter';
import { combineLoras, compose, mergeWeightDeltas, type Composition, type LoraCombination, type TaskCombination } from '@deltatune/compose';

/*
 * combineLoras' PEFT combination types and mergeWeightDeltas against fixtures/merge-reference: a
 * plain-PyTorch rewrite of PEFT's merge_utils / add_weighted_adapter (with deltatune's DARE masks),
 * on fixed LoRA factors and dense changes. See that folder's README.
 */

type Matrix = number[][];
interface Case {
  combination: string;
  members: number[];
  density?: number;
  majority_sign_method?: 'total' | 'frequency';
  seed?: number;
  rank?: number;
  expected: Record<string, unknown>;
}
const REF = JSON.parse(readFileSync(new URL('../../../fixtures/merge-reference/reference.json', import.meta.url), 'utf8')) as {
  mulberry32: { seed: number; first: number[]; seed0_first: number };
  lora: {
    sites: Array<{ name: string; in: number; out: number }>;
    r: number;
    weights: number[];
    members: Array<{ alpha: number; scaling: number; sites: Record<string, { A: Matrix; B: Matrix }> }>;
    factor_cases: Case[];
    svd_cases: Case[];
  };
  dense: {
    parameters: Array<{ name: string; shape: number[] }>;
    weights: number[];
    base: Record<string, number[] | Matrix>;
    members: Array<Record<string, number[] | Matrix>>;
    cases: Case[];
  };
};
const BERT = new URL('../../../fixtures/peft-reference/bert', import.meta.url).pathname;
const TOLERANCE = 1e-5;

const maxAbs = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  expect(got.length).toBe(want.length);
  let m = 0;
  for (let i = 0; i < got.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
  return m;
};
const flat = (x: number[] | Matrix): number[] => (x as Array<number | number[]>).flat();
/** `A B` in float64, row-major: the product a combined LoRA adds (its scaling is 1). */
function product(a: tf.Tensor, b: tf.Tensor): Float64Array {
  const [m, r] = a.shape;
  const n = b.shape[1]!;
  const [ad, bd] = [a.dataSync(), b.dataSync()];
  const out = new Float64Array(m! * n);
  for (let i = 0; i < m!; i++) for (let k = 0; k < r!; k++) for (let j = 0; j < n; j++) out[i * n + j] += ad[i * r! + k] * bd[k * n + j];
  return out;
}
const frobenius = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
};
const label = (c: Case) =>
  [
    c.combination,
    `members ${c.members.join(',')}`,
    c.density !== undefined && `density ${c.density}`,
    c.majority_sign_method,
    c.seed !== undefined && `seed ${c.seed}`,
  ]
    .filter(Boolean)
    .join(', ');
const pruneOptions = (c: Case) => ({ density: c.density, majoritySignMethod: c.majority_sign_method, seed: c.seed });

/** The biggest diff over all cases of a group, printed once: the figure the report quotes. */
const worst: Record<string, number> = {};
const record = (group: string, d: number) => (worst[group] = Math.max(worst[group] ?? 0, d));

let model: Backbone;
beforeAll(() => {
  [loraMethod, bitfitMethod, adapterMethod].forEach(registerMethod);
  model = loadHuggingFaceFolder(BERT);
});
afterAll(() => {
  console.log(
    `merge reference: max |diff| ${Object.entries(worst)
      .map(([k, v]) => `${k} ${v.toExponential(2)}`)
      .join(', ')}`,
  );
  model.dispose();
});

it("the Python port of mulberry32 draws what createRng draws (so the reference's DARE masks are deltatune's)", () => {
  const rng = createRng(REF.mulberry32.seed);
  expect(REF.mulberry32.first.map(() => rng.next())).toEqual(REF.mulberry32.first);
  expect(createRng(0).next()).toBe(REF.mulberry32.seed0_first);
});

describe('combineLoras against the reference', () => {
  let c: Composition;
  const names = REF.lora.members.map((_, i) => `m${i}`);
  beforeAll(() => {
    c = compose(model);
    REF.lora.members.forEach((m, i) => {
      const d = c.add(names[i], lora({ r: REF.lora.r, alpha: m.alpha, targets: REF.lora.sites.map((s) => s.name) }));
      const f = loraFactors(d);
      expect(f.scale).toBe(m.scaling);
      for (const s of REF.lora.sites) {
        f.sites.get(s.name)!.a.assign(tf.tensor2d(m.sites[s.name].A));
        f.sites.get(s.name)!.b.assign(tf.tensor2d(m.sites[s.name].B));
      }
    });
  });
  afterAll(() => c.detachAll());

  /** Combines a case's members into "combined", runs `check` on it and removes it again. */
  async function combined(cs: Case, check: (f: ReturnType<typeof loraFactors>) => void): Promise<void> {
    const before = tf.memory().numTensors;
    const result = await combineLoras(
      c,
      'combined',
      cs.members.map((i) => names[i]),
      cs.members.map((i) => REF.lora.weights[i]),
      { combination: cs.combination as LoraCombination, rank: cs.rank, ...pruneOptions(cs) },
    );
    try {
      // The only tensors left behind are the new LoRA's own.
      expect(tf.memory().numTensors).toBe(before + result.variables.size);
      const f = loraFactors(result);
      expect(f.scale).toBe(1);
      check(f);
    } finally {
      c.remove('combined');
    }
  }

  it.each(REF.lora.factor_cases.map((cs) => [label(cs), cs] as const))('factor-wise %s: A and B as PEFT merges them', async (_, cs) => {
    await combined(cs, (f) => {
      for (const s of REF.lora.sites) {
        const want = cs.expected[s.name] as { A: Matrix; B: Matrix };
        const { a, b } = f.sites.get(s.name)!;
        expect(a.shape).toEqual([s.in, REF.lora.r]);
        const d = Math.max(maxAbs(a.dataSync(), want.A.flat()), maxAbs(b.dataSync(), want.B.flat()));
        record('factor-wise A/B', d);
        expect(d, s.name).toBeLessThan(TOLERANCE);
      }
    });
  });

  it.each(REF.lora.svd_cases.filter((cs) => !isTruncated(cs)).map((cs) => [label(cs), cs] as const))(
    '%s at full rank: the product A B is the combined dense update',
    async (_, cs) => {
      await combined(cs, (f) => {
        for (const s of REF.lora.sites) {
          const { a, b } = f.sites.get(s.name)!;
          expect(a.shape).toEqual([s.in, cs.rank]);
          const d = maxAbs(product(a, b), (cs.expected[s.name] as { combined: Matrix }).combined.flat());
          record('svd variants A·B', d);
          expect(d, s.name).toBeLessThan(TOLERANCE);
        }
      });
    },
  );

  it.each(REF.lora.svd_cases.filter(isTruncated).map((cs) => [label(cs), cs] as const))(
    '%s truncated: as close to the combined update as the best rank-r approximation',
    async (_, cs) => {
      await combined(cs, (f) => {
        for (const s of REF.lora.sites) {
          const { a, b } = f.sites.get(s.name)!;
          const want = cs.expected[s.name] as { combined: Matrix; truncated: Matrix };
          const full = want.combined.flat();
          const ours = frobenius(product(a, b), full);
          const best = frobenius(want.truncated.flat(), full);
          const d = maxAbs(product(a, b), want.truncated.flat());
          console.log(
            `${s.name} rank ${cs.rank}: |AB - combined| ${ours.toFixed(6)}, best possible ${best.toFixed(6)}; max |AB - best| ${d.toExponential(2)}`,
          );
          // Eckart-Young: nothing of rank r is closer than the SVD truncation. The randomized SVD comes
          // within 1e-4 of it (measured: 1e-7), its product within 1e-3 of the best one (6.6e-4).
          expect(ours).toBeGreaterThanOrEqual(best * (1 - 1e-9));
          expect(ours).toBeLessThan(best * (1 + 1e-4));
          expect(d).toBeLessThan(2e-3);
        }
      });
    },
  );

  it('refuses what PEFT would refuse or silently ignore', async () => {
    const run = (combination: string, extra: object = {}, weights = [0.5, 0.5], members = ['m0', 'm1']) =>
      combineLoras(c, 'x', members, weights, { combination: combination as LoraCombination, ...extra });
    await expect(run('ties', { density: 0.5 }, [1])).rejects.toThrow(/2 LoRAs but 1 weights\n {2}fix: give one weight per LoRA/);
    await expect(run('ties')).rejects.toThrow(/ties needs a density.*\n {2}fix: pass density in \(0, 1\]/);
    await expect(run('ties', { density: 0 })).rejects.toThrow(/density must be in \(0, 1\], got 0/);
    await expect(run('dare_ties', { density: 1.5 })).rejects.toThrow(/density must be in \(0, 1\], got 1.5/);
    await expect(run('linear', { density: 0.5 })).rejects.toThrow(/linear does not prune/);
    await expect(run('svd', { density: 0.5 })).rejects.toThrow(/svd does not prune/);
    await expect(run('dare_linear_svd', { density: 0.5, majoritySignMethod: 'total' })).rejects.toThrow(/dare_linear_svd elects no signs/);
    await expect(run('ties', { density: 0.5, seed: 3 })).rejects.toThrow(/ties draws nothing at random/);
    await expect(run('ties', { density: 0.5, majoritySignMethod: 'most' })).rejects.toThrow(/must be total or frequency/);
    await expect(run('cat', { density: 0.5 })).rejects.toThrow(/cat takes no density/);
    await expect(run('ties', { density: 0.5, rank: 4 })).rejects.toThrow(/ties takes no rank/);
    await expect(run('svd', { rank: 0 })).rejects.toThrow(/rank must be a whole number >= 1, got 0/);
    await expect(run('average')).rejects.toThrow(/unknown combination "average"\n {2}fix: use one of cat, linear, ties/);
    const other = c.add('r2', lora({ r: 2, targets: REF.lora.sites.map((s) => s.name) }));
    await expect(run('ties', { density: 0.5 }, [1, 1], ['m0', 'r2'])).rejects.toThrow(/ties needs equal ranks, got 3, 2/);
    other.detach();
    c.remove('r2');
    expect(c.names).toEqual(names);
  });
});

function isTruncated(cs: Case): boolean {
  return Object.values(cs.expected).some((e) => (e as { truncated?: unknown }).truncated !== undefined);
}

/**
 * A test double of "any mergeable delta": its merge adds fixed dense changes to named backbone
 * parameters (a full fine-tune's difference, say). It has no hooks, so only merging shows it.
 */
function denseChange(changes: Record<string, number[] | Matrix>): DeltaSpec {
  return {
    method: 'dense-change',
    version: '0.0.0',
    coreRange: '^0.1.0',
    options: {},
    attach: (bb, name) => {
      const variables = new Map(Object.entries(changes).map(([k, v]) => [k, ownedVariable(tf.tensor(v))]));
      const target = (k: string) => bb.parameters.get(k)!;
      return defineDelta({
        name,
        method: 'dense-change',
        version: '0.0.0',
        backbone: bb,
        variables,
        sites: [],
        register: () => [],
        config: () => ({}),
        merge: () => {
          for (const [k, v] of variables) tf.tidy(() => target(k).assign(tf.add(target(k), v)));
        },
        mergeWeights: () => [...variables.keys()].map(target),
      });
    },
  };
}

describe('mergeWeightDeltas against the reference', () => {
  let c: Composition;
  let members: Delta[];
  const original = new Map<string, tf.Tensor>();
  const setBase = () => {
    for (const p of REF.dense.parameters) model.parameters.get(p.name)!.assign(tf.tensor(REF.dense.base[p.name]));
  };
  beforeAll(() => {
    for (const p of REF.dense.parameters) original.set(p.name, tf.clone(model.parameters.get(p.name)!));
    c = compose(model);
    members = REF.dense.members.map((m, i) => c.add(`d${i}`, denseChange(m)));
  });
  afterAll(() => {
    c.detachAll();
    for (const [k, v] of original) model.parameters.get(k)!.assign(v);
    tf.dispose([...original.values()]);
  });

  it.each(REF.dense.cases.map((cs) => [label(cs), cs] as const))(
    '%s: the folded weights are base + the combined changes',
    async (_, cs) => {
      setBase();
      for (const m of members) m.active = true;
      const chosen = cs.members.map((i) => members[i]);
      const before = tf.memory().numTensors;
      const result = await mergeWeightDeltas(
        model,
        chosen,
        cs.members.map((i) => REF.dense.weights[i]),
        { combination: cs.combination as TaskCombination, ...pruneOptions(cs) },
      );
      expect(tf.memory().numTensors).toBe(before);
      // Only the parameters some chosen member changes, in the backbone's order.
      const touched = REF.dense.parameters.map((p) => p.name).filter((n) => cs.members.some((i) => REF.dense.members[i][n]));
      expect(result.parameters).toEqual(touched);
      for (const m of chosen) expect(m.active).toBe(false);
      for (const p of REF.dense.parameters) {
        const base = flat(REF.dense.base[p.name]);
        const want = flat(cs.expected[p.name] as number[] | Matrix).map((x, i) => base[i] + x);
        const d = maxAbs(model.parameters.get(p.name)!.dataSync(), want);
        record('mergeWeightDeltas', d);
        expect(d, p.name).toBeLessThan(TOLERANCE);
      }
    },
  );
});

describe('mergeWeightDeltas on real methods', () => {
  /** Deterministic non-zero values for every variable of a delta. */
  function fill(d: Delta, seed: number) {
    const rng = createRng(seed);
    for (const v of d.variables.values()) v.assign(tf.tidy(() => uniform(rng.fork(), v.shape as number[], -0.2, 0.2)));
  }
  const snapshot = () => new Map([...model.parameters].map(([k, v]) => [k, Array.from(v.dataSync())]));
  const restore = (s: Map<string, number[]>) => {
    for (const [k, v] of model.parameters) v.assign(tf.tensor(s.get(k)!, v.shape));
  };

  it('linear with weights 1 folds LoRA + BitFit as merging them one after the other does; weights scale each change', async () => {
    const base = snapshot();
    const c = compose(model);
    const l = c.add('lora', lora({ r: 4, alpha: 8 }));
    const b = c.add('bitfit', bitfit());
    fill(l, 1);
    fill(b, 2);
    c.mergeAll();
    const sequential = snapshot();
    c.unmergeAll();
    const result = await mergeWeightDeltas(model, [l, b], [1, 1]);
    expect(result.parameters.length).toBeGreaterThan(0);
    let d = 0;
    for (const [k, v] of model.parameters) d = Math.max(d, maxAbs(v.dataSync(), sequential.get(k)!));
    expect(d).toBeLessThan(1e-6);
    // Switched off: the backbone alone computes the merged model, and the members stay attached.
    expect(model.hooks.size).toBe(0);
    expect([l.active, b.active]).toEqual([false, false]);
    // Weights 0.5 and -2 give base + 0.5 dLoRA - 2 dBitFit.
    restore(base);
    await mergeWeightDeltas(model, [l, b], [0.5, -2]);
    for (const [k, v] of model.parameters) {
      // BitFit changes the biases, LoRA the kernels: each parameter has one member's change.
      const bias = b.variables.get(k)?.dataSync();
      const want = base.get(k)!.map((x, i) => (bias ? x - 2 * bias[i] : x + 0.5 * (sequential.get(k)![i] - x)));
      expect(maxAbs(v.dataSync(), want), k).toBeLessThan(1e-6);
    }
    restore(base);
    c.detachAll();
  });

  it('on two LoRAs, dare_ties equals combineLoras dare_ties_svd at full rank (same dense changes, same masks)', async () => {
    const base = snapshot();
    const c = compose(model);
    const targets = ['query', 'value'];
    const l1 = c.add('l1', lora({ r: 4, alpha: 8, targets }));
    const l2 = c.add('l2', lora({ r: 4, alpha: 2, targets }));
    fill(l1, 3);
    fill(l2, 4);
    const options = { density: 0.6, majoritySignMethod: 'frequency', seed: 5 } as const;
    const viaSvd = await combineLoras(c, 'svd', ['l1', 'l2'], [0.7, 0.4], { combination: 'dare_ties_svd', rank: 32, ...options });
    const products = new Map([...loraFactors(viaSvd).sites].map(([s, { a, b }]) => [s, product(a, b)]));
    c.remove('svd');
    await mergeWeightDeltas(model, [l1, l2], [0.7, 0.4], { combination: 'dare_ties', ...options });
    for (const site of model.sites) {
      if (site.kind !== 'linear' || !products.has(site.name)) continue;
      const key = [...model.parameters].find(([, v]) => v === site.kernel)![0];
      const change = Array.from(site.kernel.dataSync(), (x, i) => x - base.get(key)![i]);
      expect(maxAbs(change, products.get(site.name)!), site.name).toBeLessThan(1e-5);
    }
    restore(base);
    c.detachAll();
  });

  it('refuses deltas that cannot merge, merged ones, foreign ones and bad options', async () => {
    const c = compose(model);
    const l = c.add('lora', lora({ r: 2 }));
    const a = c.add('adapter', adapter({ reductionFactor: 4 }));
    await expect(mergeWeightDeltas(model, [l, a], [1, 1])).rejects.toThrow(
      /"adapter" \(adapter\) cannot be merged into the weights\n {2}fix: /,
    );
    await expect(mergeWeightDeltas(model, [l], [1, 2])).rejects.toThrow(/1 deltas but 2 weights/);
    await expect(mergeWeightDeltas(model, [l], [1], { combination: 'ties' })).rejects.toThrow(/ties needs a density/);
    await expect(mergeWeightDeltas(model, [l], [1], { combination: 'linear', density: 0.5 })).rejects.toThrow(/linear does not prune/);
    await expect(mergeWeightDeltas(model, [l], [1], { combination: 'dare_ties', density: -1 })).rejects.toThrow(/in \(0, 1\], got -1/);
    await expect(mergeWeightDeltas(model, [l], [1], { combination: 'svd' as TaskCombination })).rejects.toThrow(
      /unknown combination "svd"/,
    );
    await expect(mergeWeightDeltas(model, [l, l], [1, 1])).rejects.toThrow(/the same delta is given twice/);
    l.merge!();
    await expect(mergeWeightDeltas(model, [l], [1])).rejects.toThrow(/"lora" is merged already/);
    const b = c.add('bitfit', bitfit());
    await expect(mergeWeightDeltas(model, [b], [1])).rejects.toThrow(/"lora" is merged into these weights/);
    l.unmerge!();
    const elsewhere = loadHuggingFaceFolder(BERT);
    await expect(mergeWeightDeltas(elsewhere, [b], [1])).rejects.toThrow(/"bitfit" is not attached to this backbone/);
    elsewhere.dispose();
    c.detachAll();
  });
});
