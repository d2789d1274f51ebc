import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, countParameters, readSafetensorsHeader, registerMethod, type Backbone } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { loadDelta, saveDelta } from '@deltatune/node';
import { lora, loraMethod, loraParameterFormula } from '@deltatune/lora';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;
const ref = (name: string) => JSON.parse(readFileSync(`${FIXTURES}${name}-reference.json`, 'utf8'));

function maxAbsDiff(actual: tf.Tensor, expected: unknown): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(actual, tf.tensor(expected as number[])))).dataSync()[0]);
}

function run(model: Backbone, r: any) {
  return tf.tidy(() =>
    model.forward({
      inputIds: tf.tensor2d(r.input_ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(r.attention_mask, undefined, 'int32'),
      tokenTypeIds: r.token_type_ids ? tf.tensor2d(r.token_type_ids, undefined, 'int32') : undefined,
    }),
  );
}

beforeAll(() => registerMethod(loraMethod));

describe('PEFT LoRA fixtures (peft 0.21)', () => {
  it('bert-lora: unmerged and merged outputs within 1e-4 of PyTorch', () => {
    const r = ref('bert');
    const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const { delta } = loadDelta(model, `${FIXTURES}bert-lora`);
    const unmerged = run(model, r);
    expect(maxAbsDiff(unmerged.lastHiddenState!, r.lora.last_hidden_state)).toBeLessThan(1e-4);
    expect(maxAbsDiff(unmerged.pooled, r.lora.pooler_output)).toBeLessThan(1e-4);
    delta.merge!();
    expect(model.hooks.size).toBe(0);
    const merged = run(model, r);
    expect(maxAbsDiff(merged.lastHiddenState!, r.lora.last_hidden_state)).toBeLessThan(1e-4);
    expect(maxAbsDiff(merged.pooled, r.lora.pooler_output)).toBeLessThan(1e-4);
    delta.unmerge!();
    const again = run(model, r);
    expect(maxAbsDiff(again.lastHiddenState!, r.lora.last_hidden_state)).toBeLessThan(1e-4);
    delta.detach();
    const base = run(model, r);
    expect(maxAbsDiff(base.lastHiddenState!, r.base.last_hidden_state)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('gpt2-lora (fan_in_fan_out, c_attn + both c_proj): logits within 1e-4, unmerged and merged', () => {
    const r = ref('gpt2');
    const model = loadHuggingFaceFolder(`${FIXTURES}gpt2`);
    const { delta } = loadDelta(model, `${FIXTURES}gpt2-lora`);
    expect(delta.sites).toEqual(
      expect.arrayContaining(['transformer.h.0.attn.c_attn', 'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_proj']),
    );
    expect(maxAbsDiff(run(model, r).logits!, r.lora.logits)).toBeLessThan(1e-4);
    delta.merge!();
    expect(maxAbsDiff(run(model, r).logits!, r.lora.logits)).toBeLessThan(1e-4);
    delta.detach();
    expect(maxAbsDiff(run(model, r).logits!, r.base.logits)).toBeLessThan(1e-4);
    model.dispose();
  });
});

describe('LoRA on its own', () => {
  let model: Backbone;
  let dir: string;
  beforeAll(() => {
    model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    dir = mkdtempSync(join(tmpdir(), 'lora-'));
  });
  afterAll(() => {
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a freshly initialised LoRA (B = 0) changes nothing, and detach restores outputs bit for bit', () => {
    const r = ref('bert');
    const before = run(model, r).lastHiddenState!.dataSync();
    const delta = attach(model, lora({ r: 4 }));
    expect(Array.from(run(model, r).lastHiddenState!.dataSync())).toEqual(Array.from(before));
    delta.detach();
    expect(model.hooks.size).toBe(0);
    expect(Array.from(run(model, r).lastHiddenState!.dataSync())).toEqual(Array.from(before));
  });

  it('parameter count equals r * (in + out) per targeted site, in core accounting', () => {
    const delta = attach(model, lora({ r: 4, targets: ['query', 'value', 'intermediate.dense'] }));
    // 2 layers x (query 4*(32+32) + value 4*(32+32) + intermediate 4*(32+64))
    expect(loraParameterFormula(model, { r: 4, targets: ['query', 'value', 'intermediate.dense'] })).toBe(2 * (256 + 256 + 384));
    const report = countParameters(model);
    expect(report.deltas[0].parameters).toBe(2 * (256 + 256 + 384));
    expect(report.trainable).toBe(2 * (256 + 256 + 384));
    delta.detach();
  });

  it('saves in PEFT format (only LoRA tensors, PEFT names and shapes) and loads back to identical outputs', async () => {
    const r = ref('bert');
    const delta = attach(model, lora({ r: 4, alpha: 8, init: 'random', seed: 7 }), 'mine');
    const expected = run(model, r).lastHiddenState!.dataSync();
    await saveDelta(join(dir, 'saved'), delta);
    delta.detach();
    const bytes = readFileSync(join(dir, 'saved', 'adapter_model.safetensors'));
    const { entries } = readSafetensorsHeader(bytes);
    expect([...entries.keys()].sort()).toEqual(
      [0, 1]
        .flatMap((l) =>
          ['query', 'value'].flatMap((m) => [
            `base_model.model.encoder.layer.${l}.attention.self.${m}.lora_A.weight`,
            `base_model.model.encoder.layer.${l}.attention.self.${m}.lora_B.weight`,
          ]),
        )
        .sort(),
    );
    expect(entries.get('base_model.model.encoder.layer.0.attention.self.query.lora_A.weight')!.shape).toEqual([4, 32]);
    expect(entries.get('base_model.model.encoder.layer.0.attention.self.query.lora_B.weight')!.shape).toEqual([32, 4]);
    const config = JSON.parse(readFileSync(join(dir, 'saved', 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, bias: 'none' });
    const { delta: loaded } = loadDelta(model, join(dir, 'saved'));
    expect(loaded.name).toBe('mine');
    expect(Array.from(run(model, r).lastHiddenState!.dataSync())).toEqual(Array.from(expected));
    loaded.detach();
  });

  it('bias=lora_only trains the targeted biases and restores them exactly on detach', () => {
    const r = ref('bert');
    const before = run(model, r).lastHiddenState!.dataSync();
    const delta = attach(model, lora({ r: 2, bias: 'lora_only' }));
    // 4 sites x r=2 x (32 + 32), plus the 4 targeted biases of 32
    expect(delta.parameterCount()).toBe(4 * 2 * (32 + 32) + 4 * 32);
    const bias = delta.variables.get('base_model.model.encoder.layer.0.attention.self.query.bias')!;
    bias.assign(tf.add(bias, 1));
    delta.detach();
    expect(Array.from(run(model, r).lastHiddenState!.dataSync())).toEqual(Array.from(before));
  });

  it('rejects PEFT options it cannot reproduce, and a bad target lists close names', () => {
    expect(() => loraMethod.fromConfig({ peft_type: 'LORA', r: 4, lora_bias: true })).toThrow(/lora_bias.*not supported/);
    // use_dora is not refused: such a folder loads as DoRA (dora.test.ts).
    expect(loraMethod.fromConfig({ peft_type: 'LORA', r: 4, use_dora: true }).method).toBe('dora');
    expect(() => attach(model, lora({ targets: ['qeury'] }))).toThrow(/"qeury" matches no linear site; closest: .*query/);
  });
});
