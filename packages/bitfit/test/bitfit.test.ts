import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, countParameters, readSafetensorsHeader, registerMethod, type Backbone } from '@deltatune/core';
import { loadHuggingFaceFolder, loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { loadDelta, saveDelta } from '@deltatune/node';
import { limitDataset, train, type ClassificationMetrics } from '@deltatune/train';
import { loadSpam } from '@deltatune/train/node';
import { bitfit, bitfitMethod, bitfitParameterCount } from '@deltatune/bitfit';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;
const ref = JSON.parse(readFileSync(`${FIXTURES}bert-reference.json`, 'utf8'));

/** Bias elements counted straight from a safetensors file's header (independent of our sites). */
function biasElementsInFile(path: string, keep: (name: string) => boolean): number {
  const { entries } = readSafetensorsHeader(readFileSync(path));
  return [...entries].filter(([k]) => k.endsWith('.bias') && keep(k)).reduce((n, [, e]) => n + e.shape.reduce((a, b) => a * b, 1), 0);
}

function run(model: Backbone) {
  return tf.tidy(
    () =>
      model.forward({
        inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
        tokenTypeIds: tf.tensor2d(ref.token_type_ids, undefined, 'int32'),
      }).lastHiddenState!,
  );
}

/** Stand-in for training: every delta variable gets random values. */
function perturb(vars: Iterable<tf.Variable>, seed: number) {
  for (const v of vars) v.assign(tf.randomNormal(v.shape, 0, 0.1, 'float32', seed++));
}

beforeAll(() => registerMethod(bitfitMethod));

describe('BitFit parameter counts equal the selected bias elements', () => {
  it('BERT, GPT-2 and USE-lite: all biases, with and without layer norms, and the query+intermediate subset', () => {
    const bert = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const gpt2 = loadHuggingFaceFolder(`${FIXTURES}gpt2`);
    const use = loadUseLite();
    const isNorm = (k: string) => /LayerNorm|ln_/.test(k);
    expect(bitfitParameterCount(bert)).toBe(biasElementsInFile(`${FIXTURES}bert/model.safetensors`, () => true));
    expect(bitfitParameterCount(bert)).toBe(640);
    expect(bitfitParameterCount(bert, { layerNorm: false })).toBe(
      biasElementsInFile(`${FIXTURES}bert/model.safetensors`, (k) => !isNorm(k)),
    );
    expect(bitfitParameterCount(bert, { subset: 'query-intermediate' })).toBe(2 * (32 + 64));
    expect(bitfitParameterCount(gpt2)).toBe(biasElementsInFile(`${FIXTURES}gpt2/model.safetensors`, () => true));
    const useBiases = [...use.parameters].filter(([k]) => k.endsWith('.bias')).reduce((n, [, v]) => n + v.size, 0);
    expect(bitfitParameterCount(use)).toBe(useBiases);
    const delta = attach(use, bitfit({ subset: 'query-intermediate' }));
    expect(countParameters(use).deltas[0].parameters).toBe(256 + 1536 + 512 + 1536);
    delta.detach();
    [bert, gpt2, use].forEach((m) => m.dispose());
  });
});

describe('BitFit on BERT', () => {
  let model: Backbone;
  beforeAll(() => (model = loadHuggingFaceFolder(`${FIXTURES}bert`)));
  afterAll(() => model.dispose());

  it('detach after training restores the outputs bit for bit', () => {
    const before = run(model).dataSync();
    const delta = attach(model, bitfit());
    expect(Array.from(run(model).dataSync())).toEqual(Array.from(before)); // d = 0 changes nothing
    perturb(delta.variables.values(), 1);
    expect(Array.from(run(model).dataSync())).not.toEqual(Array.from(before));
    delta.detach();
    expect(Array.from(run(model).dataSync())).toEqual(Array.from(before));
  });

  it('merge gives the unmerged outputs (< 1e-5) and unmerge restores the base bit for bit', () => {
    const base = run(model);
    const delta = attach(model, bitfit());
    perturb(delta.variables.values(), 7);
    const unmerged = run(model);
    delta.merge!();
    expect(model.hooks.size).toBe(0);
    expect(tf.max(tf.abs(tf.sub(run(model), unmerged))).dataSync()[0]).toBeLessThan(1e-5);
    delta.unmerge!();
    delta.detach();
    expect(Array.from(run(model).dataSync())).toEqual(Array.from(base.dataSync()));
  });

  it('saves trained biases under Hugging Face names, and loads back to the same outputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bitfit-'));
    const delta = attach(model, bitfit({ subset: 'query-intermediate' }), 'bf');
    perturb(delta.variables.values(), 3);
    const expected = run(model);
    await saveDelta(dir, delta);
    const query0 = model.parameters.get('encoder.layer.0.attention.self.query.bias')!;
    const trained = tf.add(query0, delta.variables.get('encoder.layer.0.attention.self.query.bias')!).dataSync();
    delta.detach();
    const { entries } = readSafetensorsHeader(readFileSync(join(dir, 'adapter_model.safetensors')));
    expect([...entries.keys()].sort()).toEqual([
      'encoder.layer.0.attention.self.query.bias',
      'encoder.layer.0.intermediate.dense.bias',
      'encoder.layer.1.attention.self.query.bias',
      'encoder.layer.1.intermediate.dense.bias',
    ]);
    const { delta: loaded } = loadDelta(model, dir);
    expect(loaded.name).toBe('bf');
    expect(tf.max(tf.abs(tf.sub(run(model), expected))).dataSync()[0]).toBeLessThan(1e-6);
    const saved = tf.add(query0, loaded.variables.get('encoder.layer.0.attention.self.query.bias')!).dataSync();
    expect(
      Array.from(saved)
        .map((x, i) => Math.abs(x - trained[i]))
        .every((d) => d < 1e-6),
    ).toBe(true);
    loaded.detach();
  });
});

describe('BitFit training on spam with USE-lite', () => {
  it('beats the frozen backbone + head baseline (same split, seed, steps)', async () => {
    const backbone = loadUseLite();
    const tokenizer = loadTokenizer('use-lite');
    const data = limitDataset(loadSpam(), { train: 960, validation: 128, test: 400 });
    const common = { learningRate: 3e-3, batchSize: 16, steps: 60, maxLength: 32, seed: 3, warmupSteps: 5, evalEvery: 0 } as const;
    const baseline = await train({ backbone, tokenizer, dataset: data, ...common });
    const delta = attach(backbone, bitfit());
    const tuned = await train({ backbone, tokenizer, dataset: data, deltas: [delta], ...common });
    const b = baseline.test as ClassificationMetrics;
    const t = tuned.test as ClassificationMetrics;
    console.log(`baseline test accuracy ${b.accuracy.toFixed(4)}; BitFit ${t.accuracy.toFixed(4)} (${delta.parameterCount()} parameters)`);
    expect(t.accuracy).toBeGreaterThan(b.accuracy);
    delta.detach();
    baseline.head!.dispose();
    tuned.head!.dispose();
    backbone.dispose();
  });
});
