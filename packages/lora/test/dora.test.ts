import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, DeltaTuneError, readSafetensorsHeader, registerMethod, runLinear, type Delta, type LinearSite } from '@deltatune/core';
import { loadDelta, saveDelta } from '@deltatune/node';
import { dora, doraMethod, loraMethod, optionsFromPeft, peftKey } from '@deltatune/lora';
import { ALL_LLAMA, forward, load, maxDiff, perturb, site } from './fixtures/method-models';

beforeAll(() => {
  registerMethod(loraMethod);
  registerMethod(doraMethod);
});

describe('DoRA at init', () => {
  it.each([
    ['bert', {}],
    ['llama', {}],
    ['llama', { targets: ALL_LLAMA }],
  ] as const)('computes what the base %s model does (%j)', (m, extra) => {
    const model = load(m);
    const base = forward(model, m);
    const delta = attach(model, dora({ r: 4, alpha: 8, ...extra }));
    // m = ||W|| and B = 0: W' = ||W|| W / ||W|| = W (m / norm is exactly 1 here).
    expect(maxDiff(forward(model, m), base)).toBeLessThan(1e-5);
    // The magnitude is the base weight's per-output-feature norm, PEFT's norm(W[out, in], dim=1).
    const s = site(model, delta.sites[0]);
    const m0 = delta.variables.get(peftKey(s.name, 'lora_magnitude_vector'))!;
    expect(m0.shape).toEqual([s.outFeatures]);
    const w = s.kernel.arraySync() as number[][];
    const norms = Array.from({ length: s.outFeatures }, (_, o) => Math.sqrt(w.reduce((n, row) => n + row[o] * row[o], 0)));
    expect(maxDiff(m0.dataSync(), norms)).toBeLessThan(1e-5);
    delta.detach();
    model.dispose();
  });
});

/** A site's DoRA pieces in PyTorch layout (W [out, in], A [r, in], B [out, r]) as float64 arrays. */
interface Pieces {
  w: number[][];
  bias: number[] | undefined;
  a: number[][];
  b: number[][];
  m: number[];
  s: number;
}

function effectiveWeight(p: Pieces, frozenNorm?: number[]): { w: number[][]; norm: number[] } {
  const r = p.a.length;
  const norm: number[] = [];
  const w = p.w.map((row, o) => {
    const v = row.map((wi, i) => {
      let ba = 0;
      for (let k = 0; k < r; k++) ba += p.b[o][k] * p.a[k][i];
      return wi + p.s * ba;
    });
    norm[o] = Math.sqrt(v.reduce((n, x) => n + x * x, 0));
    const n = frozenNorm ? frozenNorm[o] : norm[o];
    return v.map((x) => (p.m[o] * x) / n);
  });
  return { w, norm };
}

/** y = x W'^T + b, by hand. */
function layer(p: Pieces, x: number[][], frozenNorm?: number[]): number[][] {
  const { w } = effectiveWeight(p, frozenNorm);
  return x.map((row) => w.map((wo, o) => wo.reduce((n, wi, i) => n + wi * row[i], p.bias ? p.bias[o] : 0)));
}

function piecesOf(delta: Delta, s: LinearSite, scale: number): Pieces {
  // From what save() writes (PEFT's layout), so the layout of the file is checked too.
  const t = delta.save().tensors;
  const arr = (k: string) => t.get(peftKey(s.name, k))!.arraySync();
  return {
    w: tf.tidy(() => tf.transpose(s.kernel).arraySync() as number[][]),
    bias: s.bias ? Array.from(s.bias.dataSync()) : undefined,
    a: arr('lora_A.weight') as number[][],
    b: arr('lora_B.weight') as number[][],
    m: arr('lora_magnitude_vector') as number[],
    s: scale,
  };
}

describe('DoRA with random A, B and m', () => {
  const model = load('bert');
  const name = 'encoder.layer.0.attention.self.query';
  const s = site(model, name);
  const delta = attach(model, dora({ r: 4, alpha: 6, init: 'random', seed: 3, targets: [name] }));
  perturb(delta, 11, 0.1);
  const x = tf.randomNormal([3, s.inFeatures], 0, 1, 'float32', 5);
  const p = piecesOf(delta, s, 6 / 4);
  const xs = x.arraySync() as number[][];
  afterAll(() => {
    x.dispose();
    delta.detach();
    model.dispose();
  });

  it('gives the hand-computed layer output m (W + s B A) / ||W + s B A|| (PyTorch layout) within 1e-5', () => {
    const y = tf.tidy(() => runLinear(model.hooks, s, x, { training: false }).arraySync() as number[][]);
    const want = layer(p, xs);
    expect(maxDiff(y.flat(), want.flat())).toBeLessThan(1e-5);
    // Not trivially the base: the delta moved the output.
    expect(
      maxDiff(y.flat(), layer({ ...p, b: p.b.map((r) => r.map(() => 0)), m: effectiveWeight({ ...p, s: 0 }).norm }, xs).flat()),
    ).toBeGreaterThan(1e-2);
  });

  it('gives gradients for m, A and B with the norm a constant (finite differences with the norm frozen)', () => {
    const rw = tf.randomNormal([3, s.outFeatures], 0, 1, 'float32', 9);
    const R = rw.arraySync() as number[][];
    const [va, vb, vm] = ['lora_A.weight', 'lora_B.weight', 'lora_magnitude_vector'].map((k) => delta.variables.get(peftKey(name, k))!);
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(runLinear(model.hooks, s, x, { training: true }), rw)) as tf.Scalar,
      [va, vb, vm],
    );
    const ga = grads[va.name].arraySync() as number[][]; // [in, r]
    const gb = grads[vb.name].arraySync() as number[][]; // [r, out]
    const gm = Array.from(grads[vm.name].dataSync());
    tf.dispose([rw, ...Object.values(grads)]);

    const frozen = effectiveWeight(p).norm;
    const loss = (q: Pieces, norm?: number[]) =>
      layer(q, xs, norm).reduce((n, row, i) => n + row.reduce((k, y, o) => k + y * R[i][o], 0), 0);
    const h = 1e-6;
    const fd = (edit: (q: Pieces, d: number) => Pieces, norm?: number[]) => (loss(edit(p, h), norm) - loss(edit(p, -h), norm)) / (2 * h);
    const clone = (q: Pieces): Pieces => ({ ...q, a: q.a.map((r) => [...r]), b: q.b.map((r) => [...r]), m: [...q.m] });
    const worst = { a: 0, b: 0, m: 0, aUnfrozen: 0 };
    let scale = 0;
    for (let k = 0; k < p.a.length; k++) {
      for (let i = 0; i < p.a[0].length; i++) {
        const edit = (q: Pieces, d: number) => {
          const c = clone(q);
          c.a[k][i] += d;
          return c;
        };
        const want = fd(edit, frozen);
        scale = Math.max(scale, Math.abs(want));
        worst.a = Math.max(worst.a, Math.abs(ga[i][k] - want));
        worst.aUnfrozen = Math.max(worst.aUnfrozen, Math.abs(ga[i][k] - fd(edit)));
      }
    }
    for (let o = 0; o < p.b.length; o++) {
      for (let k = 0; k < p.a.length; k++) {
        const want = fd((q, d) => {
          const c = clone(q);
          c.b[o][k] += d;
          return c;
        }, frozen);
        worst.b = Math.max(worst.b, Math.abs(gb[k][o] - want));
      }
      const want = fd((q, d) => {
        const c = clone(q);
        c.m[o] += d;
        return c;
      }, frozen);
      worst.m = Math.max(worst.m, Math.abs(gm[o] - want));
    }
    expect(scale).toBeGreaterThan(0.1);
    expect(worst.a).toBeLessThan(1e-3);
    expect(worst.b).toBeLessThan(1e-3);
    expect(worst.m).toBeLessThan(1e-3);
    // The check can tell: differentiating through the norm gives another gradient for A.
    expect(worst.aUnfrozen).toBeGreaterThan(1e-2);
  });
});

describe('DoRA with dropout in training', () => {
  it("follows PEFT's form (base on x, the DoRA correction on dropped x): with nothing dropped it equals the weight form", () => {
    const model = load('bert');
    const name = 'encoder.layer.0.attention.self.value';
    const s = site(model, name);
    const delta = attach(model, dora({ r: 4, init: 'random', seed: 2, dropout: 1e-9, targets: [name] }));
    perturb(delta, 41, 0.1);
    const x = tf.randomNormal([3, s.inFeatures], 0, 1, 'float32', 6);
    const p = piecesOf(delta, s, 8 / 4);
    const y = tf.tidy(() => runLinear(model.hooks, s, x, { training: true }).arraySync() as number[][]);
    expect(maxDiff(y.flat(), layer(p, x.arraySync() as number[][]).flat())).toBeLessThan(1e-5);
    x.dispose();
    delta.detach();
    model.dispose();
  });
});

describe('DoRA merge', () => {
  it.each([
    ['bert', {}],
    ['llama', { targets: ALL_LLAMA }],
  ] as const)('merged gives the unmerged %s output (1e-5); unmerge restores the base weights bit for bit', (m, extra) => {
    const model = load(m);
    const delta = attach(model, dora({ r: 4, init: 'random', seed: 1, ...extra }));
    perturb(delta, 21, 0.1);
    const kernels = delta.sites.map((n) => site(model, n).kernel);
    const before = kernels.map((k) => k.dataSync().slice());
    const unmerged = forward(model, m);
    delta.merge!();
    expect(model.hooks.size).toBe(0);
    expect(maxDiff(forward(model, m), unmerged)).toBeLessThan(1e-5);
    expect(kernels.some((k, i) => maxDiff(k.dataSync(), before[i]) > 1e-3)).toBe(true);
    delta.unmerge!();
    kernels.forEach((k, i) => expect(Array.from(k.dataSync())).toEqual(Array.from(before[i])));
    expect(maxDiff(forward(model, m), unmerged)).toBeLessThan(1e-5);
    delta.detach();
    model.dispose();
  });
});

describe('DoRA in PEFT folders', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'dora-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('saves use_dora and lora_magnitude_vector under PEFT names; loads back (by stamp, and stamp-less via lora) to the same output', async () => {
    const model = load('bert');
    const delta = attach(model, dora({ r: 4, alpha: 8, init: 'random', seed: 7 }), 'mine');
    perturb(delta, 31, 0.1);
    const expected = forward(model, 'bert');
    await saveDelta(join(dir, 'saved'), delta);
    delta.detach();
    const config = JSON.parse(readFileSync(join(dir, 'saved', 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', use_dora: true, r: 4, lora_alpha: 8, deltatune: { method: 'dora' } });
    const { entries } = readSafetensorsHeader(readFileSync(join(dir, 'saved', 'adapter_model.safetensors')));
    const mine = [0, 1].flatMap((l) =>
      ['query', 'value'].flatMap((p) =>
        ['lora_A.weight', 'lora_B.weight', 'lora_magnitude_vector'].map(
          (k) => `base_model.model.encoder.layer.${l}.attention.self.${p}.${k}`,
        ),
      ),
    );
    expect([...entries.keys()].sort()).toEqual(mine.sort());
    expect(entries.get('base_model.model.encoder.layer.0.attention.self.query.lora_magnitude_vector')!.shape).toEqual([32]);

    const { delta: loaded } = loadDelta(model, join(dir, 'saved'));
    expect(loaded.method).toBe('dora');
    expect(maxDiff(forward(model, 'bert'), expected)).toBe(0);
    loaded.detach();

    // As Python PEFT writes it: no deltatune stamp, so peft_type LORA picks the lora method, which reads use_dora.
    cpSync(join(dir, 'saved'), join(dir, 'peft'), { recursive: true });
    const { deltatune: _stamp, ...peftConfig } = config;
    writeFileSync(join(dir, 'peft', 'adapter_config.json'), JSON.stringify(peftConfig));
    const { delta: asLora } = loadDelta(model, join(dir, 'peft'));
    expect(asLora.method).toBe('dora');
    expect(maxDiff(forward(model, 'bert'), expected)).toBe(0);
    asLora.detach();
    model.dispose();
  });

  it('plain LoRA options refuse a DoRA config with a clear error; DoRA refuses a plain LoRA config', () => {
    const config = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['query'], use_dora: true };
    expect(() => optionsFromPeft(config)).toThrow(DeltaTuneError);
    expect(() => optionsFromPeft(config)).toThrow(/DoRA adapter \(use_dora: true\)/);
    expect(loraMethod.fromConfig(config).method).toBe('dora');
    expect(() => doraMethod.fromConfig({ ...config, use_dora: false })).toThrow(/plain LoRA adapter/);
    expect(() => loraMethod.fromConfig({ ...config, use_dora: 'true' })).toThrow(/use_dora/);
  });
});
