import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, countParameters, registerMethod, type Backbone, type BackboneInputs } from '@deltatune/core';
import { batchToTensors, encodeBatch } from '@deltatune/models';
import { loadHuggingFaceFolder, loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { loadDelta, saveDelta } from '@deltatune/node';
import { limitDataset, train, type ClassificationMetrics } from '@deltatune/train';
import { loadSpam } from '@deltatune/train/node';
import { adapter, adapterMethod, adapterParameterCount, type Placement } from '@deltatune/adapter';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;
const bertRef = JSON.parse(readFileSync(`${FIXTURES}bert-reference.json`, 'utf8'));
const gptRef = JSON.parse(readFileSync(`${FIXTURES}gpt2-reference.json`, 'utf8'));
const PLACEMENTS: Placement[] = ['houlsby', 'pfeiffer', 'parallel'];

function outputsOf(model: Backbone, inputs: BackboneInputs): tf.Tensor {
  return tf.tidy(() => {
    const out = model.forward(inputs);
    return out.logits ?? out.embedding ?? out.lastHiddenState!;
  });
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

beforeAll(() => registerMethod(adapterMethod));

describe('adapters on BERT, GPT-2 and USE-lite', () => {
  const models: Array<[string, () => Backbone, () => BackboneInputs]> = [
    [
      'bert',
      () => loadHuggingFaceFolder(`${FIXTURES}bert`),
      () => ({
        inputIds: tf.tensor2d(bertRef.input_ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(bertRef.attention_mask, undefined, 'int32'),
        tokenTypeIds: tf.tensor2d(bertRef.token_type_ids, undefined, 'int32'),
      }),
    ],
    [
      'gpt2',
      () => loadHuggingFaceFolder(`${FIXTURES}gpt2`),
      () => ({
        inputIds: tf.tensor2d(gptRef.input_ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(gptRef.attention_mask, undefined, 'int32'),
      }),
    ],
    [
      'use-lite',
      () => loadUseLite(),
      () => batchToTensors(encodeBatch(loadTokenizer('use-lite'), ['adapters leave me unchanged', 'until they train'])),
    ],
  ];

  for (const [arch, load, makeInputs] of models) {
    it(`${arch}: every placement, freshly initialised, leaves outputs unchanged (< 1e-6); counts match the formula`, () => {
      const model = load();
      const inputs = makeInputs();
      const base = outputsOf(model, inputs);
      for (const placement of PLACEMENTS) {
        const delta = attach(model, adapter({ placement, reductionFactor: 4 }), placement);
        expect(maxDiff(outputsOf(model, inputs), base)).toBeLessThan(1e-6);
        // closed form, by hand from the architecture: sites x (in*m + m + m*h + h)
        const layers =
          arch === 'use-lite'
            ? [
                { inA: 256, h: 512 },
                { inA: 512, h: 512 },
              ]
            : [0, 1].map(() => ({ inA: 32, h: 32 }));
        const perSite = (inW: number, h: number) => {
          const m = Math.round(h / 4);
          return inW * m + m + m * h + h;
        };
        const expected = layers.reduce((n, l) => {
          const ffn = perSite(l.h, l.h); // feed-forward sublayer input and output are both h wide
          const attn = perSite(l.h, l.h);
          if (placement === 'houlsby') return n + attn + ffn;
          return n + ffn;
        }, 0);
        expect(delta.parameterCount()).toBe(expected);
        expect(adapterParameterCount(model, { placement, reductionFactor: 4 })).toBe(expected);
        expect(countParameters(model).deltas.find((d) => d.name === placement)!.parameters).toBe(expected);
        delta.detach();
      }
      expect(maxDiff(outputsOf(model, inputs), base)).toBe(0);
      model.dispose();
    });
  }

  it('parallel adapters read the sublayer input (USE-lite layer 0 attention: 256 in, 512 out)', () => {
    const model = loadUseLite();
    const delta = attach(model, adapter({ placement: 'parallel', positions: ['attention'], reductionFactor: 8 }));
    const down0 = delta.variables.get('encoder.layer.0.attention.output.adapter.down.weight')!;
    expect(down0.shape).toEqual([256, 64]);
    expect(delta.variables.get('encoder.layer.0.attention.output.adapter.up.weight')!.shape).toEqual([64, 512]);
    delta.detach();
    model.dispose();
  });

  it('trained (non-zero) adapters change outputs, save and load back to identical outputs', async () => {
    const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const inputs = models[0][2]();
    const base = outputsOf(model, inputs);
    const delta = attach(model, adapter({ placement: 'pfeiffer', nonLinearity: 'gelu', reductionFactor: 2, scaling: 0.5 }), 'pf');
    let seed = 1;
    for (const v of delta.variables.values()) v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', seed++));
    const tuned = outputsOf(model, inputs);
    expect(maxDiff(tuned, base)).toBeGreaterThan(1e-3);
    const dir = mkdtempSync(join(tmpdir(), 'adapter-'));
    await saveDelta(dir, delta);
    delta.detach();
    const { delta: loaded } = loadDelta(model, dir);
    expect(loaded.name).toBe('pf');
    expect(maxDiff(outputsOf(model, inputs), tuned)).toBe(0);
    loaded.detach();
    model.dispose();
  });

  it('training on spam with USE-lite beats the frozen backbone + head baseline', async () => {
    const backbone = loadUseLite();
    const tokenizer = loadTokenizer('use-lite');
    const data = limitDataset(loadSpam(), { train: 960, validation: 128, test: 400 });
    const common = { learningRate: 3e-3, batchSize: 16, steps: 60, maxLength: 32, seed: 3, warmupSteps: 5, evalEvery: 0 } as const;
    const baseline = await train({ backbone, tokenizer, dataset: data, ...common });
    const delta = attach(backbone, adapter({ placement: 'pfeiffer', reductionFactor: 16, seed: 3 }));
    const tuned = await train({ backbone, tokenizer, dataset: data, deltas: [delta], ...common });
    const b = baseline.test as ClassificationMetrics;
    const t = tuned.test as ClassificationMetrics;
    console.log(
      `baseline test accuracy ${b.accuracy.toFixed(4)}; Pfeiffer adapter ${t.accuracy.toFixed(4)} (${delta.parameterCount()} parameters)`,
    );
    expect(t.accuracy).toBeGreaterThan(b.accuracy);
    delta.detach();
    baseline.head!.dispose();
    tuned.head!.dispose();
    backbone.dispose();
  });
});
