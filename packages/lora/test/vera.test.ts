import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, readSafetensorsHeader, registerMethod, runLinear } from '@deltatune/core';
import { loadDelta, saveDelta } from '@deltatune/node';
import { peftKey, vera, veraMethod, VERA_A, VERA_B } from '@deltatune/lora';
import { describeConformance } from '../../../test-conformance';
import { ALL_LLAMA, forward, load, maxDiff, perturb, site } from './fixtures/method-models';

beforeAll(() => registerMethod(veraMethod));

describe('VeRA at init', () => {
  it.each([
    ['bert', {}],
    ['llama', { targets: ALL_LLAMA }],
  ] as const)('computes what the base %s model does (lambda_b = 0); lambdas trainable, A and B frozen buffers', (m, extra) => {
    const model = load(m);
    const base = forward(model, m);
    const delta = attach(model, vera({ r: 4, ...extra }));
    expect(maxDiff(forward(model, m), base)).toBe(0);
    const sites = delta.sites.map((n) => site(model, n));
    const maxIn = Math.max(...sites.map((s) => s.inFeatures));
    const maxOut = Math.max(...sites.map((s) => s.outFeatures));
    expect([...delta.buffers.keys()].sort()).toEqual([VERA_A, VERA_B]);
    expect(delta.buffers.get(VERA_A)!.shape).toEqual([maxIn, 4]);
    expect(delta.buffers.get(VERA_B)!.shape).toEqual([4, maxOut]);
    for (const b of delta.buffers.values()) expect(b.trainable).toBe(false);
    expect(delta.parameterCount()).toBe(sites.reduce((n, s) => n + 4 + s.outFeatures, 0));
    const d = delta.variables.get(peftKey(sites[0].name, 'vera_lambda_d'))!;
    expect(Array.from(d.dataSync())).toEqual([0.1, 0.1, 0.1, 0.1].map(Math.fround));
    delta.detach();
    model.dispose();
  });
});

describe('VeRA with random lambdas', () => {
  it('gives the hand-computed layer output W x + b + lambda_b ⊙ (B (lambda_d ⊙ (A x))) (PyTorch layout, sliced) within 1e-5', () => {
    const model = load('llama');
    // Sites of different shapes, so the top-left slicing of the shared pair is exercised.
    const delta = attach(model, vera({ r: 4, seed: 3, targets: ['layers.0.self_attn.k_proj', 'layers.0.mlp.down_proj'] }));
    perturb(delta, 11, 0.5);
    const { tensors } = delta.save();
    const A = tensors.get(VERA_A)!.arraySync() as number[][]; // [r, maxIn]
    const B = tensors.get(VERA_B)!.arraySync() as number[][]; // [maxOut, r]
    let moved = 0;
    for (const name of delta.sites) {
      const s = site(model, name);
      const lb = Array.from(tensors.get(peftKey(name, 'vera_lambda_b'))!.dataSync());
      const ld = Array.from(tensors.get(peftKey(name, 'vera_lambda_d'))!.dataSync());
      const W = tf.tidy(() => tf.transpose(s.kernel).arraySync() as number[][]); // [out, in]
      const bias = s.bias ? Array.from(s.bias.dataSync()) : undefined;
      const x = tf.randomNormal([3, s.inFeatures], 0, 1, 'float32', 5);
      const xs = x.arraySync() as number[][];
      const want = xs.map((row) => {
        const ax = A.map((ak) => ak.slice(0, s.inFeatures).reduce((n, v, i) => n + v * row[i], 0));
        const dax = ax.map((v, k) => v * ld[k]);
        return W.map((wo, o) => {
          const base = wo.reduce((n, v, i) => n + v * row[i], bias ? bias[o] : 0);
          const upd = lb[o] * dax.reduce((n, v, k) => n + B[o][k] * v, 0);
          return base + upd;
        });
      });
      const baseOnly = xs.map((row) => W.map((wo, o) => wo.reduce((n, v, i) => n + v * row[i], bias ? bias[o] : 0)));
      const y = tf.tidy(() => runLinear(model.hooks, s, x, { training: false }).arraySync() as number[][]);
      expect(maxDiff(y.flat(), want.flat())).toBeLessThan(1e-5);
      moved = Math.max(moved, maxDiff(y.flat(), baseOnly.flat()));
      x.dispose();
    }
    expect(moved).toBeGreaterThan(1e-3);
    delta.detach();
    model.dispose();
  });
});

describe('VeRA merge', () => {
  it.each([
    ['bert', {}],
    ['llama', { targets: ALL_LLAMA }],
  ] as const)('merged gives the unmerged %s output (1e-5); unmerge restores the base weights bit for bit', (m, extra) => {
    const model = load(m);
    const delta = attach(model, vera({ r: 4, seed: 1, ...extra }));
    perturb(delta, 21, 0.5);
    const kernels = delta.sites.map((n) => site(model, n).kernel);
    const before = kernels.map((k) => k.dataSync().slice());
    const unmerged = forward(model, m);
    delta.merge!();
    expect(model.hooks.size).toBe(0);
    expect(maxDiff(forward(model, m), unmerged)).toBeLessThan(1e-5);
    expect(kernels.some((k, i) => maxDiff(k.dataSync(), before[i]) > 1e-4)).toBe(true);
    delta.unmerge!();
    kernels.forEach((k, i) => expect(Array.from(k.dataSync())).toEqual(Array.from(before[i])));
    expect(maxDiff(forward(model, m), unmerged)).toBeLessThan(1e-5);
    delta.detach();
    model.dispose();
  });
});

describe('VeRA in PEFT folders', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'vera-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('saves peft_type VERA with vera_A / vera_B and per-site lambdas under PEFT names; loads back to the same output', async () => {
    const model = load('bert');
    const delta = attach(model, vera({ r: 4, seed: 7 }), 'mine');
    perturb(delta, 31, 0.5);
    const expected = forward(model, 'bert');
    await saveDelta(join(dir, 'saved'), delta);
    delta.detach();
    const config = JSON.parse(readFileSync(join(dir, 'saved', 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      peft_type: 'VERA',
      r: 4,
      projection_prng_key: 7,
      save_projection: true,
      d_initial: 0.1,
      vera_dropout: 0,
      deltatune: { method: 'vera' },
    });
    const { entries } = readSafetensorsHeader(readFileSync(join(dir, 'saved', 'adapter_model.safetensors')));
    const mine = [0, 1].flatMap((l) =>
      ['query', 'value'].flatMap((p) =>
        ['vera_lambda_b', 'vera_lambda_d'].map((k) => `base_model.model.encoder.layer.${l}.attention.self.${p}.${k}`),
      ),
    );
    expect([...entries.keys()].sort()).toEqual([...mine, 'base_model.vera_A', 'base_model.vera_B'].sort());
    expect(entries.get('base_model.vera_A')!.shape).toEqual([4, 32]);
    expect(entries.get('base_model.vera_B')!.shape).toEqual([32, 4]);
    expect(entries.get('base_model.model.encoder.layer.0.attention.self.query.vera_lambda_b')!.shape).toEqual([32]);
    expect(entries.get('base_model.model.encoder.layer.0.attention.self.query.vera_lambda_d')!.shape).toEqual([4]);

    const { delta: loaded } = loadDelta(model, join(dir, 'saved'));
    expect(loaded.method).toBe('vera');
    expect(maxDiff(forward(model, 'bert'), expected)).toBe(0);
    loaded.detach();

    // As Python PEFT writes it (no stamp): peft_type VERA picks vera; the saved A and B are used, not the seed.
    cpSync(join(dir, 'saved'), join(dir, 'peft'), { recursive: true });
    const { deltatune: _stamp, ...peftConfig } = config;
    writeFileSync(join(dir, 'peft', 'adapter_config.json'), JSON.stringify({ ...peftConfig, projection_prng_key: 99 }));
    const { delta: asPeft } = loadDelta(model, join(dir, 'peft'));
    expect(asPeft.method).toBe('vera');
    expect(maxDiff(forward(model, 'bert'), expected)).toBe(0);
    asPeft.detach();
    model.dispose();
  });

  it('save_projection false: no A/B in the file; reload regenerates them from the seed to the same output; PEFT-written ones are refused', async () => {
    const model = load('llama');
    const delta = attach(model, vera({ r: 4, seed: 5, saveProjection: false, targets: ALL_LLAMA }));
    perturb(delta, 41, 0.5);
    const expected = forward(model, 'llama');
    await saveDelta(join(dir, 'noproj'), delta);
    delta.detach();
    const config = JSON.parse(readFileSync(join(dir, 'noproj', 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'VERA', save_projection: false, projection_prng_key: 5 });
    const { entries } = readSafetensorsHeader(readFileSync(join(dir, 'noproj', 'adapter_model.safetensors')));
    expect(entries.has(VERA_A) || entries.has(VERA_B)).toBe(false);
    const { delta: loaded } = loadDelta(model, join(dir, 'noproj'));
    expect(maxDiff(forward(model, 'llama'), expected)).toBe(0);
    loaded.detach();

    const { deltatune: _stamp, ...peftConfig } = config;
    expect(() => veraMethod.fromConfig(peftConfig)).toThrow(/save_projection: false/);
    expect(() => veraMethod.fromConfig({ ...peftConfig, peft_type: 'LORA' })).toThrow(/not VERA/);
    model.dispose();
  });
});

describeConformance('VeRA', () => vera({ r: 4 }), { identityAtInit: true });
describeConformance(
  'VeRA on every projection (q, k, v, o, gate, up, down)',
  () => vera({ r: 4, targets: ALL_LLAMA }),
  { identityAtInit: true },
  'llama',
);
