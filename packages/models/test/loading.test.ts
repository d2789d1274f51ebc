import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, writeSafetensors, type RawTensor } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { FIXTURES, maxAbsDiff, reference } from './fixtures';

function writeFolder(config: object, tensors: Map<string, RawTensor>): string {
  const dir = mkdtempSync(join(tmpdir(), 'model-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors));
  return dir;
}

const bertConfig = () => JSON.parse(readFileSync(`${FIXTURES}bert/config.json`, 'utf8'));
const bertTensors = () => readSafetensors(readFileSync(`${FIXTURES}bert/model.safetensors`)).tensors;

describe('Hugging Face folders', () => {
  it('sharded safetensors (model.safetensors.index.json) load to the same outputs', () => {
    const ref = reference('bert');
    const tensors = bertTensors();
    const names = [...tensors.keys()];
    const dir = mkdtempSync(join(tmpdir(), 'sharded-'));
    copyFileSync(`${FIXTURES}bert/config.json`, join(dir, 'config.json'));
    const shards = [names.slice(0, 10), names.slice(10)];
    const weightMap: Record<string, string> = {};
    shards.forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeFileSync(join(dir, file), writeSafetensors(new Map(part.map((n) => [n, tensors.get(n)!]))));
      for (const n of part) weightMap[n] = file;
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const model = loadHuggingFaceFolder(dir);
    const out = model.forward({
      inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
      tokenTypeIds: tf.tensor2d(ref.token_type_ids, undefined, 'int32'),
    });
    expect(maxAbsDiff(out.lastHiddenState!, ref.base.last_hidden_state)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('task checkpoints with a "bert." prefix load too', () => {
    const prefixed = new Map([...bertTensors()].map(([k, v]) => [`bert.${k}`, v]));
    prefixed.set('classifier.weight', { dtype: 'float32', shape: [2, 32], data: new Float32Array(64), storedAs: 'F32' });
    const model = loadHuggingFaceFolder(writeFolder(bertConfig(), prefixed));
    expect(model.architecture).toBe('bert');
    model.dispose();
  });

  it('a missing tensor, a wrong shape and an unsupported model_type are errors that name them', () => {
    const missing = bertTensors();
    missing.delete('encoder.layer.1.attention.self.value.weight');
    expect(() => loadHuggingFaceFolder(writeFolder(bertConfig(), missing))).toThrow(
      /missing tensor "encoder\.layer\.1\.attention\.self\.value\.weight"/,
    );
    const wrong = bertTensors();
    wrong.set('pooler.dense.bias', { dtype: 'float32', shape: [31], data: new Float32Array(31), storedAs: 'F32' });
    expect(() => loadHuggingFaceFolder(writeFolder(bertConfig(), wrong))).toThrow(
      /"pooler\.dense\.bias" has shape \[31\], config\.json implies \[32\]/,
    );
    expect(() => loadHuggingFaceFolder(writeFolder({ ...bertConfig(), model_type: 't5' }, bertTensors()))).toThrow(
      /model_type "t5", which deltatune does not support[\s\S]*bert, roberta, gpt2, llama, mistral, qwen2, qwen3/,
    );
    expect(() => loadHuggingFaceFolder(join(tmpdir(), 'no-such-model'))).toThrow(/config\.json not found/);
  });

  it('RoBERTa counts positions from pad+1 and skips padding (transformers create_position_ids_from_input_ids)', () => {
    const ref = reference('bert');
    const config = { ...bertConfig(), model_type: 'roberta', pad_token_id: 1 };
    const tensors = new Map([...bertTensors()].map(([k, v]) => [`roberta.${k}`, v]));
    const roberta = loadHuggingFaceFolder(writeFolder(config, tensors));
    const bert = loadHuggingFaceFolder(`${FIXTURES}bert`);
    // Row 0 has no padding and no id 1: RoBERTa position of token t is t + 2, so shifting BERT's
    // position table by two rows must give the same hidden states.
    const positions = bert.parameters.get('embeddings.position_embeddings.weight')!;
    positions.assign(tf.concat([tf.slice(positions, [2, 0], [62, 32]), tf.zeros([2, 32])]));
    const inputs = {
      inputIds: tf.tensor2d([ref.input_ids[0]], undefined, 'int32'),
      attentionMask: tf.tensor2d([ref.attention_mask[0]], undefined, 'int32'),
    };
    const a = roberta.forward(inputs).lastHiddenState!;
    const b = bert.forward(inputs).lastHiddenState!;
    expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-5);
    roberta.dispose();
    bert.dispose();
  });
});
