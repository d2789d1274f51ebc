import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, countParameters, readSafetensorsHeader, registerMethod, runLinear, type Backbone, type LinearSite } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { loadDelta, saveDelta } from '@deltatune/node';
import {
  factorization,
  kron,
  loha,
  lohaMethod,
  lohaParameterFormula,
  lokr,
  lokrMethod,
  lokrParameterFormula,
  lokrShape,
  peftKey,
} from '@deltatune/lycoris';

const FIXTURES = new URL('../../../fixtures/', import.meta.url).pathname;
const bert = () => loadHuggingFaceFolder(`${FIXTURES}peft-reference/bert`);
const llama = () => loadHuggingFaceFolder(`${FIXTURES}llm-reference/llama`);
const site = (m: Backbone, name: string) => m.sites.find((s): s is LinearSite => s.kind === 'linear' && s.name === name)!;
const QUERY = 'encoder.layer.0.attention.self.query';

beforeAll(() => {
  registerMethod(lohaMethod);
  registerMethod(lokrMethod);
});

describe('factorization (PEFT lokr/layer.py)', () => {
  it("gives PEFT's documented pairs and the shapes of real layers", () => {
    // PEFT's docstring examples.
    expect(factorization(256)).toEqual([16, 16]);
    expect(factorization(128)).toEqual([8, 16]);
    expect(factorization(127)).toEqual([1, 127]);
    expect(factorization(128, 4)).toEqual([4, 32]);
    // BERT-base, Llama-3-8B's MLP, a factor that does not divide (the nearest pair with a side <= 5).
    expect(factorization(768)).toEqual([24, 32]);
    expect(factorization(14336)).toEqual([112, 128]);
    expect(factorization(96, 5)).toEqual([4, 24]);
    // A dividing factor is used as given, even as the larger side.
    expect(factorization(32, 16)).toEqual([16, 2]);
  });
});

describe('kron', () => {
  it('is the Kronecker product: entry (i p + k, j q + l) = x[i, j] y[k, l]', () => {
    const x = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const y = [
      [0, 1],
      [7, -1],
      [2, 3],
    ];
    const got = tf.tidy(() => kron(tf.tensor2d(x), tf.tensor2d(y)).arraySync() as number[][]);
    expect(got).toHaveLength(6);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++)
        for (let k = 0; k < 3; k++) for (let l = 0; l < 2; l++) expect(got[i * 3 + k][j * 2 + l]).toBe(x[i][j] * y[k][l]);
  });
});

describe('trainable parameter counts (BERT fixture: hidden H = 32, L = 2, r = 4 on query, value)', () => {
  const model = bert();
  afterAll(() => model.dispose());
  const H = 32;
  const L = 2;

  it('LoHa: 2L(16H), the closed form and the accounting agree', () => {
    const delta = attach(model, loha({ r: 4 }));
    expect(delta.parameterCount()).toBe(2 * L * 16 * H);
    expect(lohaParameterFormula(model, { r: 4 })).toBe(2 * L * 16 * H);
    expect(countParameters(model).trainable).toBeGreaterThanOrEqual(2 * L * 16 * H);
    delta.detach();
  });

  it('LoKr: 32 = 4 x 8, so w1 [4, 4] and w2 [8, 8] (full, since r = 4 >= 8 / 2): 2L(16 + 64); r = 1 makes w2 low-rank', () => {
    const full = attach(model, lokr({ r: 4 }));
    expect(full.parameterCount()).toBe(2 * L * (16 + 64));
    expect(lokrParameterFormula(model, { r: 4 })).toBe(2 * L * (16 + 64));
    expect([...full.variables.keys()].filter((k) => k.includes(QUERY)).map((k) => k.slice(k.lastIndexOf('.') + 1))).toEqual([
      'lokr_w1',
      'lokr_w2',
    ]);
    full.detach();
    const low = attach(model, lokr({ r: 1 }));
    // w1 [4, 4] stays full without decomposeBoth; w2 is w2_a [8, 1] w2_b [1, 8].
    expect(low.parameterCount()).toBe(2 * L * (16 + 16));
    low.detach();
    const both = attach(model, lokr({ r: 1, decomposeBoth: true }));
    expect(both.parameterCount()).toBe(2 * L * (8 + 16));
    expect(lokrParameterFormula(model, { r: 1, decomposeBoth: true })).toBe(2 * L * (8 + 16));
    both.detach();
  });

  it('LoKr shapes follow out = a b, in = c d for non-square layers (intermediate 32 -> 64)', () => {
    const s = site(model, 'encoder.layer.0.intermediate.dense');
    expect(lokrShape(s, { r: 4, decomposeFactor: -1, decomposeBoth: false })).toEqual({
      a: 8,
      b: 8,
      c: 4,
      d: 8,
      fullW1: true,
      fullW2: true,
    });
    const delta = attach(model, lokr({ r: 4, targets: ['intermediate.dense'] }));
    expect(delta.variables.get(peftKey(s.name, 'lokr_w1'))!.shape).toEqual([8, 4]);
    expect(delta.variables.get(peftKey(s.name, 'lokr_w2'))!.shape).toEqual([8, 8]);
    delta.detach();
  });
});

describe('initialisation', () => {
  it.each([
    ['loha default: w2_b zero', () => loha({ r: 4 }), ['hada_w2_b']],
    ['lokr default: w1 zero', () => lokr({ r: 4 }), ['lokr_w1']],
    ['lokr lycoris: w2 zero', () => lokr({ r: 4, init: 'lycoris' }), ['lokr_w2']],
    ['lokr lycoris, low-rank w2: w2_b zero', () => lokr({ r: 1, init: 'lycoris' }), ['lokr_w2_b']],
  ] as const)('%s, every other factor random with PyTorch Kaiming-uniform bounds', (_label, spec, zero) => {
    const model = bert();
    const delta = attach(model, spec());
    for (const [key, v] of delta.variables) {
      const suffix = key.slice(key.lastIndexOf('.') + 1);
      const values = v.dataSync();
      const maxAbs = values.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      if ((zero as readonly string[]).includes(suffix)) expect(maxAbs).toBe(0);
      else {
        // kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = the second dimension.
        const bound = 1 / Math.sqrt(v.shape[1]);
        expect(maxAbs).toBeLessThanOrEqual(bound);
        expect(maxAbs).toBeGreaterThan(bound / 2);
      }
    }
    delta.detach();
    model.dispose();
  });
});

describe('PEFT folder written by save', () => {
  it.each([
    ['loha', () => loha({ r: 4, alpha: 8, targets: ['query', 'intermediate.dense'] }), 'LOHA'],
    ['lokr', () => lokr({ r: 1, alpha: 3, decomposeBoth: true, targets: ['query', 'intermediate.dense'] }), 'LOKR'],
  ] as const)('%s: PEFT tensor names and [out, in] layouts, a config PEFT reads, and a lossless reload', async (method, spec, peftType) => {
    const dir = mkdtempSync(join(tmpdir(), `${method}-`));
    try {
      const model = bert();
      const delta = attach(model, spec());
      let seed = 1;
      for (const v of delta.variables.values()) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', seed++)));
      await saveDelta(dir, delta);
      const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      expect(config.peft_type).toBe(peftType);
      expect(config).toMatchObject({ r: method === 'loha' ? 4 : 1, alpha: method === 'loha' ? 8 : 3, rank_pattern: {}, alpha_pattern: {} });
      if (method === 'lokr') expect(config).toMatchObject({ decompose_both: true, decompose_factor: -1, rank_dropout_scale: false });
      const { entries } = readSafetensorsHeader(readFileSync(join(dir, 'adapter_model.safetensors')));
      const shapes = Object.fromEntries([...entries].map(([k, v]) => [k, v.shape]));
      const inter = 'encoder.layer.1.intermediate.dense'; // [out 64, in 32]
      if (method === 'loha') {
        expect(shapes[peftKey(inter, 'hada_w1_a')]).toEqual([64, 4]);
        expect(shapes[peftKey(inter, 'hada_w1_b')]).toEqual([4, 32]);
        expect(Object.keys(shapes)).toHaveLength(4 * 4);
      } else {
        // 64 = 8 x 8, 32 = 4 x 8; r = 1 < 8 / 2: both sides low-rank.
        expect(shapes[peftKey(inter, 'lokr_w1_a')]).toEqual([8, 1]);
        expect(shapes[peftKey(inter, 'lokr_w1_b')]).toEqual([1, 4]);
        expect(shapes[peftKey(inter, 'lokr_w2_a')]).toEqual([8, 1]);
        expect(shapes[peftKey(inter, 'lokr_w2_b')]).toEqual([1, 8]);
      }
      const x = tf.randomNormal([3, 32], 0, 1, 'float32', 9);
      const before = tf.tidy(() => runLinear(model.hooks, site(model, inter), x, { training: false }).dataSync());
      delta.detach();
      model.dispose();
      const fresh = bert();
      const { delta: loaded } = loadDelta(fresh, dir);
      expect(loaded.method).toBe(method);
      const after = tf.tidy(() => runLinear(fresh.hooks, site(fresh, inter), x, { training: false }).dataSync());
      expect(Array.from(after)).toEqual(Array.from(before));
      x.dispose();
      loaded.detach();
      fresh.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GPT-2 (Conv1D layers in PyTorch)', () => {
  it('trains and merges in deltatune, and warns that PEFT cannot load the folder', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const model = loadHuggingFaceFolder(`${FIXTURES}peft-reference/gpt2`);
    const delta = attach(model, lokr({ r: 2, init: 'random' }));
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/PEFT cannot load LoHa\/LoKr on GPT-2's Conv1D layers/));
    warn.mockRestore();
    const s = site(model, 'transformer.h.0.attn.c_attn'); // [in 32, out 96]
    const x = tf.randomNormal([2, 32], 0, 1, 'float32', 4);
    const out = () => tf.tidy(() => Array.from(runLinear(model.hooks, s, x, { training: false }).dataSync()));
    const unmerged = out();
    const base = tf.tidy(() => Array.from(tf.add(tf.matMul(x, s.kernel), s.bias!).dataSync()));
    expect(Math.max(...unmerged.map((v, i) => Math.abs(v - base[i])))).toBeGreaterThan(1e-3);
    delta.merge!();
    const merged = out();
    expect(Math.max(...merged.map((v, i) => Math.abs(v - unmerged[i])))).toBeLessThan(1e-5);
    delta.unmerge!();
    x.dispose();
    delta.detach();
    model.dispose();
  });
});

describe('training-time dropouts (PEFT rank_dropout, module_dropout)', () => {
  const model = llama();
  const s = site(model, 'model.layers.0.self_attn.k_proj'); // [in 64, out 32]
  const x = tf.randomNormal([4, s.inFeatures], 0, 1, 'float32', 3);
  afterAll(() => {
    x.dispose();
    model.dispose();
  });
  const update = (training: boolean) =>
    tf.tidy(() => {
      const withDelta = runLinear(model.hooks, s, x, { training });
      return tf.sub(withDelta, tf.add(tf.matMul(x, s.kernel), s.bias ?? 0)).arraySync() as number[][];
    });

  /** Rank dropout 0.5 on k_proj's 32 output features: whole features zeroed, the rest scaled by `ratio(zeros)`. */
  function expectRankDropout(ratio: (zeros: number) => number): void {
    const rows = update(false);
    const dropped = update(true);
    // The update is (x W' + b) - (x W + b), a difference of two rounded outputs: a dropped feature
    // reads as zero only up to that rounding, so a feature counts as dropped when it lost most of
    // its update (a kept one keeps all of it, or more when rescaled).
    const size = (m: number[][], o: number) => m.reduce((n, row) => n + Math.abs(row[o]), 0);
    const zeroColumns = rows[0].map((_, o) => size(dropped, o) < 0.5 * size(rows, o));
    const zeros = zeroColumns.filter(Boolean).length;
    // About half of the 32 features dropped (P(outside 4..28) < 1e-4), the same ones for every row.
    expect(zeros).toBeGreaterThan(4);
    expect(zeros).toBeLessThan(28);
    // The ratio on the kept feature with the largest update, where that rounding matters least.
    let kept = -1;
    for (let o = 0; o < zeroColumns.length; o++)
      if (!zeroColumns[o] && (kept < 0 || Math.abs(rows[0][o]) > Math.abs(rows[0][kept]))) kept = o;
    expect(Math.abs(dropped[0][kept] / rows[0][kept] / ratio(zeros) - 1)).toBeLessThan(1e-3);
  }

  it('module dropout skips whole updates in training only; rank dropout zeroes whole output features', () => {
    const skipping = attach(model, loha({ r: 2, init: 'random', targets: ['k_proj'], moduleDropout: 0.5 }));
    const full = update(false).flat();
    expect(Math.max(...full.map(Math.abs))).toBeGreaterThan(1e-3);
    let skipped = 0;
    for (let i = 0; i < 40; i++) {
      const u = update(true).flat();
      // Each pass is all or nothing: the whole update, or none of it (no rescaling, as PEFT).
      if (u.every((v) => v === 0)) skipped++;
      else expect(u.every((v, j) => Math.abs(v - full[j]) < 1e-6)).toBe(true);
    }
    // Binomial(40, 0.5) outside 8..32: probability < 1e-4.
    expect(skipped).toBeGreaterThan(8);
    expect(skipped).toBeLessThan(32);
    skipping.detach();
    const ranked = attach(model, loha({ r: 2, init: 'random', targets: ['k_proj'], rankDropout: 0.5 }));
    // LoHa always rescales the kept features by 1 / (fraction kept).
    expectRankDropout((zeros) => 32 / (32 - zeros));
    ranked.detach();
  });

  it.each([
    [false, 'keeps the kept features as they are'],
    [true, 'rescales the kept features by 1 / (fraction kept)'],
  ])('LoKr with rankDropoutScale %s %s', (rescale) => {
    const delta = attach(model, lokr({ r: 2, init: 'random', targets: ['k_proj'], rankDropout: 0.5, rankDropoutScale: rescale }));
    expectRankDropout((zeros) => (rescale ? 32 / (32 - zeros) : 1));
    delta.detach();
  });
});
