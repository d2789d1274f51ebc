import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach, decodeCheckpoint, registerMethod } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { ia3, ia3Method } from '../src/index';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIX = join(ROOT, 'fixtures/peft-reference');
const ref = JSON.parse(readFileSync(join(FIX, 'bert-reference.json'), 'utf8'));

function maxAbsDiff(a: unknown, b: unknown): number {
  if (Array.isArray(a) && Array.isArray(b)) return Math.max(...a.map((x, i) => maxAbsDiff(x, b[i])));
  return Math.abs((a as number) - (b as number));
}

describe('IA3 as a third-party plugin', () => {
  it('deltatune forward --plugin ./examples/plugin-ia3 --delta bert-ia3 matches PEFT (< 1e-4), unmerged and merged', () => {
    for (const merge of [[], ['--merge']]) {
      const out = join(mkdtempSync(join(tmpdir(), 'ia3-')), 'out.json');
      const r = spawnSync(
        process.execPath,
        [
          join(ROOT, 'packages/cli/dist/bin.js'),
          'forward',
          '--plugin',
          './examples/plugin-ia3',
          '--model',
          join(FIX, 'bert'),
          '--delta',
          join(FIX, 'bert-ia3'),
          '--inputs',
          join(FIX, 'bert-reference.json'),
          '--out',
          out,
          ...merge,
        ],
        { cwd: ROOT, encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(readFileSync(out, 'utf8'));
      expect(maxAbsDiff(got.last_hidden_state, ref.ia3.last_hidden_state)).toBeLessThan(1e-4);
      expect(maxAbsDiff(got.pooler_output, ref.ia3.pooler_output)).toBeLessThan(1e-4);
    }
  });

  it('through the API: ones change nothing; the PEFT vectors load, round-trip, and detach exactly', () => {
    registerMethod(ia3Method);
    const model = loadHuggingFaceFolder(join(FIX, 'bert'));
    const inputs = {
      inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
      tokenTypeIds: tf.tensor2d(ref.token_type_ids, undefined, 'int32'),
    };
    const base = model.forward(inputs).lastHiddenState!.dataSync();
    const delta = attach(model, ia3());
    expect(Array.from(model.forward(inputs).lastHiddenState!.dataSync())).toEqual(Array.from(base));
    // key, value (output scaled: 32 each), attention.output.dense and output.dense (input scaled: 32 and 64), 2 layers
    expect(delta.parameterCount()).toBe(2 * (32 + 32 + 32 + 64));
    const peft = decodeCheckpoint(
      readFileSync(join(FIX, 'bert-ia3/adapter_config.json'), 'utf8'),
      readFileSync(join(FIX, 'bert-ia3/adapter_model.safetensors')),
    );
    delta.load(peft);
    expect(maxAbsDiff(model.forward(inputs).lastHiddenState!.arraySync(), ref.ia3.last_hidden_state)).toBeLessThan(1e-4);
    const saved = delta.save();
    for (const [k, t] of peft.tensors) expect(Array.from(saved.tensors.get(k)!.dataSync())).toEqual(Array.from(t.dataSync()));
    delta.detach();
    expect(Array.from(model.forward(inputs).lastHiddenState!.dataSync())).toEqual(Array.from(base));
    model.dispose();
  });
});
