import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import {
  attach,
  createRng,
  defineDelta,
  registerMethod,
  unregisterMethod,
  uniform,
  type Backbone,
  type BackboneInputs,
  type DeltaSpec,
  type LinearSite,
} from '@deltatune/core';
import { loadHuggingFaceFolder, loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { loadComposition, saveComposition } from '@deltatune/node/composition';
import { limitDataset, train } from '@deltatune/train';
import { loadSpam } from '@deltatune/train/node';
import { lora, loraMethod } from '@deltatune/lora';
import { bitfit, bitfitMethod } from '@deltatune/bitfit';
import { adapter, adapterMethod } from '@deltatune/adapter';
import { prefixMethod, prefixTuning } from '@deltatune/prefix';
import { combineLoras, compose } from '@deltatune/compose';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;
const ref = JSON.parse(readFileSync(`${FIXTURES}bert-reference.json`, 'utf8'));
const inputs = (): BackboneInputs => ({
  inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
  attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
  tokenTypeIds: tf.tensor2d(ref.token_type_ids, undefined, 'int32'),
});
const hidden = (m: Backbone) => m.forward(inputs()).lastHiddenState!;
const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

/** Deterministic non-zero values for every variable of a delta, keyed by the variable's name. */
function fill(vars: Iterable<[string, tf.Variable]>, seed: number) {
  for (const [name, v] of vars) {
    let h = seed;
    for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    v.assign(tf.tidy(() => uniform(createRng(h), v.shape as number[], -0.2, 0.2)));
  }
}

const FOUR = () => ({
  lora: lora({ r: 4, alpha: 8 }),
  bitfit: bitfit(),
  adapter: adapter({ placement: 'houlsby', reductionFactor: 4 }),
  prefix: prefixTuning({ virtualTokens: 3 }),
});

beforeAll(() => [loraMethod, bitfitMethod, adapterMethod, prefixMethod].forEach(registerMethod));

describe('four methods on one BERT', () => {
  let model: Backbone;
  beforeAll(() => (model = loadHuggingFaceFolder(`${FIXTURES}bert`)));
  afterAll(() => model.dispose());

  it('the result does not depend on the order deltas are added in', () => {
    const run = (order: Array<keyof ReturnType<typeof FOUR>>) => {
      const c = compose(model);
      const specs = FOUR();
      for (const name of order) fill(c.add(name, specs[name]).variables, 1);
      const out = hidden(model).dataSync();
      c.detachAll();
      return Array.from(out);
    };
    const forward = run(['lora', 'bitfit', 'adapter', 'prefix']);
    expect(run(['prefix', 'adapter', 'bitfit', 'lora'])).toEqual(forward);
    expect(run(['adapter', 'lora', 'prefix', 'bitfit'])).toEqual(forward);
  });

  it('equals applying them by hand: LoRA and BitFit folded into the weights manually, adapter and prefix attached alone', () => {
    const c = compose(model);
    const specs = FOUR();
    for (const name of ['lora', 'bitfit', 'adapter', 'prefix'] as const) fill(c.add(name, specs[name]).variables, 1);
    const composed = hidden(model);
    const counts = c.parameterCounts();
    expect(counts.total).toBe(Object.values(counts.byDelta).reduce((a, b) => a + b, 0));
    // By hand on a second copy: W += (alpha/r) A B at query/value; b += d for every bias.
    const manual = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const lo = c.get('lora').variables;
    const bf = c.get('bitfit').variables;
    for (const site of manual.sites) {
      if (site.kind === 'linear') {
        const a = lo.get(`base_model.model.${site.name}.lora_A.weight`);
        if (a) site.kernel.assign(tf.add(site.kernel, tf.mul(tf.matMul(a, lo.get(`base_model.model.${site.name}.lora_B.weight`)!), 8 / 4)));
        site.bias!.assign(tf.add(site.bias!, bf.get(`${site.name}.bias`)!));
      }
      if (site.kind === 'norm') site.beta.assign(tf.add(site.beta, bf.get(`${site.name}.bias`)!));
    }
    for (const name of ['adapter', 'prefix'] as const) {
      const d = attach(manual, FOUR()[name], name);
      for (const [k, v] of d.variables) v.assign(c.get(name).variables.get(k)!);
    }
    expect(maxDiff(hidden(manual), composed)).toBeLessThan(1e-5);
    manual.dispose();
    c.detachAll();
  });

  it('explicit order decides who runs first at a shared site (here: a scale and LoRA on the same projection)', () => {
    const site = model.sites.find((s) => s.name === 'encoder.layer.0.attention.self.query') as LinearSite;
    const scale: DeltaSpec = {
      method: 'scale',
      version: '0.0.0',
      coreRange: '^0.1.0',
      options: {},
      attach: (bb, name) =>
        defineDelta({
          name,
          method: 'scale',
          version: '0.0.0',
          backbone: bb,
          variables: new Map(),
          sites: [site.name],
          config: () => ({}),
          register: () => [bb.hooks.add('linear', site.name, { output: (_x, y) => tf.mul(y, 2) }, { owner: name })],
        }),
    };
    const x = tf.randomNormal([3, 32], 0, 1, 'float32', 5);
    const base = tf.add(tf.matMul(x, site.kernel), site.bias!);
    for (const [first, expected] of [
      ['scale', (lr: tf.Tensor) => tf.add(tf.mul(base, 2), lr)],
      ['lora', (lr: tf.Tensor) => tf.mul(tf.add(base, lr), 2)],
    ] as const) {
      const c = compose(model);
      const l = c.add('lora', lora({ r: 2, alpha: 2, init: 'random', targets: [site.name] }), { order: first === 'lora' ? 0 : 1 });
      c.add('scale', scale, { order: first === 'scale' ? 0 : 1 });
      expect(c.runOrder[0]).toBe(first);
      const loraPath = tf.mul(
        tf.matMul(
          tf.matMul(x, l.variables.get(`base_model.model.${site.name}.lora_A.weight`)!),
          l.variables.get(`base_model.model.${site.name}.lora_B.weight`)!,
        ),
        1,
      ); // alpha / r = 1
      const got = tf.tidy(() => {
        let y = tf.add(tf.matMul(x, site.kernel), site.bias!);
        for (const h of model.hooks.at('linear', site.name)) y = h.output!(x, y, site, { training: false });
        return y;
      });
      expect(maxDiff(got, expected(loraPath))).toBeLessThan(1e-5);
      c.detachAll();
    }
  });

  it('merged LoRA + BitFit equal unmerged (< 1e-5); unmerge restores the base bit for bit', () => {
    const base = hidden(model);
    const c = compose(model);
    fill(c.add('lora', lora({ r: 4 })).variables, 2);
    fill(c.add('bitfit', bitfit()).variables, 3);
    const unmerged = hidden(model);
    expect(c.mergeAll().sort()).toEqual(['bitfit', 'lora']);
    expect(model.hooks.size).toBe(0);
    expect(maxDiff(hidden(model), unmerged)).toBeLessThan(1e-5);
    c.unmergeAll();
    c.activate();
    expect(Array.from(hidden(model).dataSync())).toEqual(Array.from(base.dataSync()));
    c.detachAll();
    expect(Array.from(hidden(model).dataSync())).toEqual(Array.from(base.dataSync()));
  });

  it('switches deltas at run time without reloading the backbone', () => {
    const base = hidden(model);
    const c = compose(model);
    fill(c.add('a', adapter({ reductionFactor: 4 })).variables, 4);
    fill(c.add('b', adapter({ reductionFactor: 4 })).variables, 5);
    c.activate('a');
    const onlyA = hidden(model);
    c.activate('b');
    const onlyB = hidden(model);
    expect(maxDiff(onlyA, onlyB)).toBeGreaterThan(1e-3);
    c.activate();
    expect(maxDiff(hidden(model), base)).toBe(0);
    c.activate('a');
    expect(maxDiff(hidden(model), onlyA)).toBe(0);
    c.detachAll();
  });

  it('weighted LoRA combination: cat is exact, svd at full rank is exact, svd truncated approximates; averaging adapters', async () => {
    const c = compose(model);
    fill(c.add('l1', lora({ r: 2, alpha: 4 })).variables, 6);
    fill(c.add('l2', lora({ r: 3, alpha: 3 })).variables, 7);
    c.activate('l1', 'l2');
    // Reference: 0.7 * l1 + 0.3 * l2, by scaling B of each (the update is linear in B).
    const scaleB = (name: string, w: number) => {
      for (const [k, v] of c.get(name).variables) if (k.endsWith('lora_B.weight')) v.assign(tf.mul(v, w));
    };
    scaleB('l1', 0.7);
    scaleB('l2', 0.3);
    const weighted = hidden(model);
    scaleB('l1', 1 / 0.7);
    scaleB('l2', 1 / 0.3);
    await combineLoras(c, 'cat', ['l1', 'l2'], [0.7, 0.3], { combination: 'cat' });
    await combineLoras(c, 'svd', ['l1', 'l2'], [0.7, 0.3], { combination: 'svd', rank: 5 });
    await combineLoras(c, 'svd1', ['l1', 'l2'], [0.7, 0.3], { combination: 'svd', rank: 1 });
    const base = (c.activate(), hidden(model));
    c.activate('cat');
    expect(maxDiff(hidden(model), weighted)).toBeLessThan(1e-5);
    c.activate('svd');
    expect(maxDiff(hidden(model), weighted)).toBeLessThan(1e-4);
    c.activate('svd1');
    const err1 = maxDiff(hidden(model), weighted);
    expect(err1).toBeGreaterThan(1e-5);
    expect(err1).toBeLessThan(maxDiff(base, weighted));
    c.activate();
    fill(c.add('x', adapter({ reductionFactor: 4 })).variables, 8);
    fill(c.add('y', adapter({ reductionFactor: 4 })).variables, 9);
    const avg = c.average('avg', ['x', 'y']);
    for (const [k, v] of avg.variables) {
      const expected = tf.div(tf.add(c.get('x').variables.get(k)!, c.get('y').variables.get(k)!), 2);
      expect(maxDiff(v, expected)).toBeLessThan(1e-7);
    }
    c.detachAll();
  });

  it('a saved 3-delta composition loads back to exactly the same outputs; a missing method names its package', async () => {
    const c = compose(model);
    fill(c.add('lora', lora({ r: 4 }), { order: 2 }).variables, 10);
    fill(c.add('bitfit', bitfit({ subset: 'query-intermediate' })).variables, 11);
    fill(c.add('adapter', adapter({ placement: 'pfeiffer', reductionFactor: 4 }), { order: 1 }).variables, 12);
    c.setActive('bitfit', false);
    const expected = hidden(model);
    const dir = mkdtempSync(join(tmpdir(), 'composition-'));
    await saveComposition(dir, c);
    c.detachAll();
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(manifest.deltas.map((d: { name: string; package: string }) => [d.name, d.package])).toEqual([
      ['lora', '@deltatune/lora'],
      ['bitfit', '@deltatune/bitfit'],
      ['adapter', '@deltatune/adapter'],
    ]);
    const loaded = loadComposition(model, dir);
    expect(loaded.names).toEqual(['lora', 'bitfit', 'adapter']);
    expect(loaded.get('bitfit').active).toBe(false);
    expect(Array.from(hidden(model).dataSync())).toEqual(Array.from(expected.dataSync()));
    loaded.detachAll();
    unregisterMethod('adapter');
    expect(() => loadComposition(model, dir)).toThrow(/needs method "adapter": npm install @deltatune\/adapter/);
    registerMethod(adapterMethod);
  });
});

describe('sequential and simultaneous training', () => {
  it('sequential: training the second delta leaves the frozen first one unchanged', async () => {
    const backbone = loadUseLite();
    const tokenizer = loadTokenizer('use-lite');
    const data = limitDataset(loadSpam(), { train: 64, validation: 16, test: 16 });
    const c = compose(backbone);
    c.add('lora', lora({ r: 2, seed: 1 }));
    c.add('bitfit', bitfit({ subset: 'query-intermediate' }));
    const common = { tokenizer, dataset: data, learningRate: 1e-2, batchSize: 16, steps: 4, maxLength: 16, seed: 1, evalEvery: 0 } as const;
    c.train('lora');
    const stage1 = await train({ backbone, deltas: c.deltas, ...common });
    const loraAfterStage1 = [...c.get('lora').variables.values()].map((v) => Array.from(v.dataSync()));
    const bitfitBefore = [...c.get('bitfit').variables.values()].map((v) => Array.from(v.dataSync()));
    expect(bitfitBefore.flat().every((x) => x === 0)).toBe(true); // frozen during stage 1
    c.train('bitfit');
    const stage2 = await train({ backbone, deltas: c.deltas, ...common });
    expect([...c.get('lora').variables.values()].map((v) => Array.from(v.dataSync()))).toEqual(loraAfterStage1);
    expect([...c.get('bitfit').variables.values()].some((v) => v.dataSync().some((x) => x !== 0))).toBe(true);
    // Simultaneous: both train, in one run. A third delta, filled with non-zero values so that it
    // changes the output (and would get gradients), is left untrainable: the control.
    const control = c.add('control', lora({ r: 2, seed: 2 }));
    fill(control.variables, 20);
    c.train('lora', 'bitfit');
    expect(c.deltas.map((d) => [d.name, d.trainable])).toEqual([
      ['lora', true],
      ['bitfit', true],
      ['control', false],
    ]);
    const snapshot = (name: string) => [...c.get(name).variables].map(([k, v]) => [k, Array.from(v.dataSync())] as const);
    const before = { lora: snapshot('lora'), bitfit: snapshot('bitfit'), control: snapshot('control') };
    const stage3 = await train({ backbone, deltas: c.deltas, ...common });
    // Every variable of both trained deltas moved (LoRA's A and B, each of BitFit's biases)...
    for (const name of ['lora', 'bitfit'] as const) {
      const after = new Map(snapshot(name));
      for (const [k, values] of before[name]) expect(after.get(k), `${name} ${k}`).not.toEqual(values);
    }
    // ...and the untrainable one did not, by a single bit.
    expect(snapshot('control')).toEqual(before.control);
    stage1.head!.dispose();
    stage2.head!.dispose();
    stage3.head!.dispose();
    c.detachAll();
    backbone.dispose();
  });
});
