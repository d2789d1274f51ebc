import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, registerMethod, type BackboneInputs } from '@deltatune/core';
import { selectBackend } from '@deltatune/backends';
import { batchToTensors, encodeBatch } from '@deltatune/models';
import { loadHuggingFaceFolder, loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { loadDelta, saveDelta } from '@deltatune/node';
import { limitDataset, train, type ClassificationMetrics } from '@deltatune/train';
import { loadSpam } from '@deltatune/train/node';
import { prefixMethod, prefixParameterCount, prefixTuning, promptMethod, promptTuning } from '@deltatune/prefix';
import { maxAbsDiffAsync, probeWebgpu } from '../../../test-webgpu';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;
const bertRef = JSON.parse(readFileSync(`${FIXTURES}bert-reference.json`, 'utf8'));
const gptRef = JSON.parse(readFileSync(`${FIXTURES}gpt2-reference.json`, 'utf8'));

// PEFT drops token_type_ids for prompt learning, so the references used type 0 everywhere.
const bertInputs = (): BackboneInputs => ({
  inputIds: tf.tensor2d(bertRef.input_ids, undefined, 'int32'),
  attentionMask: tf.tensor2d(bertRef.attention_mask, undefined, 'int32'),
});

beforeAll(() => {
  registerMethod(promptMethod);
  registerMethod(prefixMethod);
});

// On wasm (plain ops), and through the fused kernels (extra keys merged into the projections'
// layout, masked softmax with prefix positions) on cpu, and on webgpu where there is an adapter.
const webgpuMissing = await probeWebgpu();
const backends = ['wasm', 'cpu', ...(webgpuMissing ? [] : ['webgpu'])] as const;

describe.each(backends)('PEFT prompt and prefix fixtures on BERT (peft 0.21), on %s', (backend) => {
  afterAll(() => selectBackend('wasm'));

  it('bert-prompt: outputs 4 positions longer, within 1e-4 of PyTorch', async () => {
    await selectBackend(backend);
    const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const { delta } = loadDelta(model, `${FIXTURES}bert-prompt`);
    const out = model.forward(bertInputs());
    expect(out.prependedPositions).toBe(4);
    expect(out.lastHiddenState!.shape).toEqual([2, 16, 32]);
    expect(await maxAbsDiffAsync(out.lastHiddenState!, bertRef.prompt.last_hidden_state)).toBeLessThan(1e-4);
    expect(await maxAbsDiffAsync(out.pooled, bertRef.prompt.pooler_output)).toBeLessThan(1e-4);
    delta.detach();
    model.dispose();
  });

  it('bert-prefix: same length, keys/values per layer from the table, within 1e-4 of PyTorch', async () => {
    await selectBackend(backend);
    const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const { delta } = loadDelta(model, `${FIXTURES}bert-prefix`);
    const out = model.forward(bertInputs());
    expect(out.prependedPositions).toBe(0);
    expect(out.lastHiddenState!.shape).toEqual([2, 12, 32]);
    expect(await maxAbsDiffAsync(out.lastHiddenState!, bertRef.prefix.last_hidden_state)).toBeLessThan(1e-4);
    expect(await maxAbsDiffAsync(out.pooled, bertRef.prefix.pooler_output)).toBeLessThan(1e-4);
    expect(delta.parameterCount()).toBe(4 * 128);
    delta.detach();
    model.dispose();
  });
});

describe('prefix and prompt on GPT-2 and USE-lite', () => {
  it('GPT-2 prefix: the causal mask still hides later tokens; prefix keys are visible to every position', () => {
    const model = loadHuggingFaceFolder(`${FIXTURES}gpt2`);
    const delta = attach(model, prefixTuning({ virtualTokens: 3, initStd: 1 }));
    const ids = [gptRef.input_ids[0]];
    const full = model.forward({
      inputIds: tf.tensor2d(ids, undefined, 'int32'),
      attentionMask: tf.ones([1, ids[0].length], 'int32'),
    }).logits!;
    // Causality: logits at position t depend only on tokens <= t (and the prefix): truncating the input leaves them unchanged.
    const cut = model.forward({
      inputIds: tf.tensor2d([ids[0].slice(0, 5)], undefined, 'int32'),
      attentionMask: tf.ones([1, 5], 'int32'),
    }).logits!;
    expect(tf.max(tf.abs(tf.sub(tf.slice(full, [0, 0, 0], [1, 5, -1]), cut))).dataSync()[0]).toBeLessThan(1e-5);
    // The prefix changes position 0's output (it can see the prefix).
    delta.active = false;
    const plain = model.forward({
      inputIds: tf.tensor2d([ids[0].slice(0, 5)], undefined, 'int32'),
      attentionMask: tf.ones([1, 5], 'int32'),
    }).logits!;
    expect(
      tf.max(tf.abs(tf.sub(tf.slice(plain, [0, 0, 0], [1, 1, -1]), tf.slice(cut, [0, 0, 0], [1, 1, -1])))).dataSync()[0],
    ).toBeGreaterThan(1e-4);
    expect(prefixParameterCount(model, { virtualTokens: 3 })).toBe(3 * 2 * 2 * 32);
    delta.detach();
    model.dispose();
  });

  it('GPT-2 prompt: logits grow by the virtual tokens; real tokens still cannot see later ones', () => {
    const model = loadHuggingFaceFolder(`${FIXTURES}gpt2`);
    const delta = attach(model, promptTuning({ virtualTokens: 2, init: 'random', seed: 4 }));
    const ids = gptRef.input_ids[0] as number[];
    const run = (n: number) =>
      model.forward({ inputIds: tf.tensor2d([ids.slice(0, n)], undefined, 'int32'), attentionMask: tf.ones([1, n], 'int32') });
    const full = run(ids.length);
    expect(full.prependedPositions).toBe(2);
    expect(full.logits!.shape).toEqual([1, ids.length + 2, 100]);
    const cut = run(5);
    expect(tf.max(tf.abs(tf.sub(tf.slice(full.logits!, [0, 0, 0], [1, 7, -1]), cut.logits!))).dataSync()[0]).toBeLessThan(1e-5);
    delta.detach();
    model.dispose();
  });

  it('USE-lite: prefix keys sized per layer (256, then 512 wide); prompt prepends 256-wide embeddings', () => {
    const model = loadUseLite();
    const prefix = attach(model, prefixTuning({ virtualTokens: 4 }), 'px');
    expect(prefix.parameterCount()).toBe(4 * (2 * 256 + 2 * 512));
    const prompt = attach(model, promptTuning({ virtualTokens: 5, init: 'text', initTokenIds: [10, 20, 30] }), 'pt');
    expect(prompt.variables.get('prompt_embeddings')!.shape).toEqual([5, 256]);
    const inputs = batchToTensors(encodeBatch(loadTokenizer('use-lite'), ['is this spam?']));
    const out = model.forward(inputs);
    expect(out.prependedPositions).toBe(5);
    expect(out.embedding!.shape).toEqual([1, 512]);
    prefix.detach();
    prompt.detach();
    model.dispose();
  });
});

describe('saving, loading and training', () => {
  it('prefix with projection saves the projected table (PEFT layout), which loads without the MLP to the same outputs', async () => {
    const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const delta = attach(model, prefixTuning({ virtualTokens: 4, projection: true, projectionHidden: 16, seed: 2 }), 'proj');
    const expected = model.forward(bertInputs()).lastHiddenState!;
    const dir = mkdtempSync(join(tmpdir(), 'prefix-'));
    await saveDelta(dir, delta);
    delta.detach();
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({
      peft_type: 'PREFIX_TUNING',
      num_virtual_tokens: 4,
      num_layers: 2,
      token_dim: 32,
      prefix_projection: false,
    });
    const { delta: loaded } = loadDelta(model, dir);
    expect([...loaded.variables.keys()]).toEqual(['prompt_embeddings']);
    expect(tf.max(tf.abs(tf.sub(model.forward(bertInputs()).lastHiddenState!, expected))).dataSync()[0]).toBeLessThan(1e-6);
    loaded.detach();
    model.dispose();
  });

  // The delta's own learning rate (the head keeps 1e-2): prompt and prefix want far larger ones.
  // With 1e-2 for both, 30 steps moved the held-out loss only 0.1726 -> 0.1714 (prefix) and
  // 0.2113 -> 0.2073 (prompt).
  for (const [method, make, deltaLr] of [
    ['prefix', () => prefixTuning({ virtualTokens: 8, seed: 3 }), 0.3],
    ['prompt', () => promptTuning({ virtualTokens: 8, seed: 3 }), 0.1],
  ] as const) {
    it(`${method} training (its own learning rate ${deltaLr}) on spam with USE-lite lowers the held-out loss by > 0.01 relative to the untrained delta; save/load keeps outputs`, async () => {
      const backbone = loadUseLite();
      const tokenizer = loadTokenizer('use-lite');
      const data = limitDataset(loadSpam(), { train: 480, validation: 64, test: 200 });
      const common = { batchSize: 16, maxLength: 32, seed: 3, warmupSteps: 3, evalEvery: 0 } as const;
      // Untrained delta: only the head trains (the delta is frozen).
      const untrainedDelta = attach(backbone, make(), 'untrained');
      untrainedDelta.trainable = false;
      const untrained = await train({
        backbone,
        tokenizer,
        dataset: data,
        deltas: [untrainedDelta],
        learningRate: 1e-2,
        steps: 30,
        ...common,
      });
      untrainedDelta.detach();
      const delta = attach(backbone, make(), method);
      const trained = await train({
        backbone,
        tokenizer,
        dataset: data,
        deltas: [delta],
        learningRate: 1e-2,
        deltaLearningRates: { [method]: deltaLr },
        steps: 30,
        ...common,
      });
      const u = untrained.test as ClassificationMetrics;
      const t = trained.test as ClassificationMetrics;
      console.log(
        `${method}: held-out loss untrained ${u.loss.toFixed(4)} -> trained ${t.loss.toFixed(4)} (accuracy ${u.accuracy.toFixed(4)} -> ${t.accuracy.toFixed(4)})`,
      );
      expect(t.loss).toBeLessThan(u.loss - 0.01);
      const inputs = batchToTensors(encodeBatch(tokenizer, ['win a free prize now', 'see you at lunch']));
      const before = backbone.forward(inputs).pooled;
      const dir = mkdtempSync(join(tmpdir(), `${method}-`));
      await saveDelta(dir, delta);
      delta.detach();
      const { delta: loaded } = loadDelta(backbone, dir);
      expect(tf.max(tf.abs(tf.sub(backbone.forward(inputs).pooled, before))).dataSync()[0]).toBe(0);
      loaded.detach();
      untrained.head!.dispose();
      trained.head!.dispose();
      backbone.dispose();
    });
  }
});
