import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { greedyIds, llmReference, maskedMaxDiff } from '../../../test-llm';

/*
 * `deltatune merge` and `inspect` on the Llama family (fixtures/llm-reference): the merged folder keeps
 * the input's dtypes, names, shapes and layout, and runs as the LoRA-adapted model of the PyTorch
 * reference. The CLI runs as built (packages/cli/dist): build first.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const FIX = join(ROOT, 'fixtures/llm-reference');
const tmp = mkdtempSync(join(tmpdir(), 'merge-llm-'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

/** name -> { dtype, shape } as the file's header says (no decoding). */
function header(path: string): Map<string, { dtype: string; shape: number[] }> {
  const { entries } = readSafetensorsHeader(readFileSync(path), path);
  return new Map([...entries].map(([k, e]) => [k, { dtype: e.dtype, shape: e.shape }]));
}

/** The model's logits on the reference's two rows, against `lora.logits` where the mask is 1. */
function loraDiff(dir: string, name: string): number {
  const ref = llmReference(name);
  const model = loadHuggingFaceFolder(dir);
  const logits = tf.tidy(
    () =>
      model.forward({
        inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
      }).logits!,
  );
  const diff = maskedMaxDiff(logits, ref.lora.logits, ref.attention_mask);
  logits.dispose();
  model.dispose();
  return diff;
}

function greedyMatches(dir: string, name: string): boolean[] {
  const model = loadHuggingFaceFolder(dir);
  const got = llmReference(name).greedy_lora.map(
    (g) => JSON.stringify(greedyIds(model, g.prompt_ids, g.new_ids.length)) === JSON.stringify(g.new_ids),
  );
  model.dispose();
  return got;
}

/** The input's values of one tensor. */
function original(name: string, tensor: string): Float32Array {
  return readSafetensors(readFileSync(join(FIX, name, 'model.safetensors'))).tensors.get(tensor)!.data as Float32Array;
}

/** Largest |lora - base| logit: how far the delta moves the outputs, which a tolerance must be well under. */
function loraEffect(name: string): number {
  const ref = llmReference(name);
  return maskedMaxDiff(tf.tensor(ref.base.logits), ref.lora.logits, ref.attention_mask);
}

describe('deltatune merge on Llama / Qwen folders', () => {
  // Folding LoRA into bfloat16 weights rounds each merged weight to 8 significant bits (relative error
  // up to 2^-8); the reference adds the LoRA product in float32 to the unrounded weights. Measured:
  // qwen2 1.35e-1, qwen3 9.75e-2, on logits up to 17 that the LoRA moves by 22.
  const BF16_TOLERANCE = 0.2;

  it.each(['qwen2', 'qwen3'])('%s (bfloat16): BF16 tensors, same names and shapes, runs as the adapted model', (name) => {
    const out = join(tmp, `${name}-merged`);
    const r = cli(['merge', '--model', join(FIX, name), '--delta', join(FIX, `${name}-lora`), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/model\.safetensors \(BF16\)/);
    const input = header(join(FIX, name, 'model.safetensors'));
    const written = header(join(out, 'model.safetensors'));
    expect([...written.keys()].sort()).toEqual([...input.keys()].sort());
    for (const [k, e] of input) expect(written.get(k), k).toEqual(e);
    expect([...written.values()].every((e) => e.dtype === 'BF16')).toBe(true);
    // Tied embeddings: no separate head is written where the input had none.
    expect(written.has('lm_head.weight')).toBe(false);
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe(readFileSync(join(FIX, name, 'config.json'), 'utf8'));
    expect(readFileSync(join(out, 'generation_config.json'))).toEqual(readFileSync(join(FIX, name, 'generation_config.json')));

    // Each stored weight is the float32 merge rounded to bfloat16: within half a unit in the 8th bit.
    const f32 = join(tmp, `${name}-merged-f32`);
    expect(cli(['merge', '--model', join(FIX, name), '--delta', join(FIX, `${name}-lora`), '--out', f32, '--dtype', 'float32']).code).toBe(
      0,
    );
    const exact = readSafetensors(readFileSync(join(f32, 'model.safetensors'))).tensors;
    let changed = 0;
    for (const [k, t] of readSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors) {
      const [got, want] = [t.data, exact.get(k)!.data];
      for (let i = 0; i < got.length; i++)
        if (Math.abs(got[i] - want[i]) > 2 ** -8 * Math.abs(want[i])) throw new Error(`${k}[${i}]: ${got[i]} vs ${want[i]}`);
      if (k.endsWith('q_proj.weight')) {
        const before = original(name, k);
        if (got.some((g, i) => g !== before[i])) changed++;
      }
    }
    // Every layer's q_proj (a target of both LoRAs) moved: the delta is folded in, not dropped.
    expect(changed).toBe(2);

    const diff = loraDiff(out, name);
    console.log(
      `${name} merged as BF16: max |logit - lora| ${diff.toExponential(2)} (the LoRA moves logits by ${loraEffect(name).toFixed(1)})`,
    );
    expect(diff).toBeLessThan(BF16_TOLERANCE);
    expect(BF16_TOLERANCE).toBeLessThan(0.01 * loraEffect(name));
    // The reference's smallest top-2 gap along its greedy steps (qwen2 0.44, qwen3 0.106) is above that error.
    expect(greedyMatches(out, name)).toEqual([true, true]);
  });

  it('qwen2 with --dtype float32: F32 tensors, torch_dtype float32, lora logits within 1e-4 and greedy ids exact', () => {
    const out = join(tmp, 'qwen2-f32');
    const r = cli([
      'merge',
      '--model',
      join(FIX, 'qwen2'),
      '--delta',
      join(FIX, 'qwen2-lora'),
      '--out',
      out,
      '--dtype',
      'float32',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().dtypes).toEqual(['F32']);
    const written = header(join(out, 'model.safetensors'));
    expect([...written.values()].every((e) => e.dtype === 'F32')).toBe(true);
    expect(written.size).toBe(header(join(FIX, 'qwen2', 'model.safetensors')).size);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.torch_dtype).toBe('float32');
    expect({ ...config, torch_dtype: 'bfloat16' }).toEqual(JSON.parse(readFileSync(join(FIX, 'qwen2', 'config.json'), 'utf8')));
    const diff = loraDiff(out, 'qwen2');
    console.log(`qwen2 merged as F32: max |logit - lora| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    expect(greedyMatches(out, 'qwen2')).toEqual([true, true]);
  });

  it('llama (float32) stays F32: lora logits within 1e-4, greedy ids exact, the untied lm_head kept', () => {
    const out = join(tmp, 'llama-merged');
    const r = cli(['merge', '--model', join(FIX, 'llama'), '--delta', join(FIX, 'llama-lora'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const input = header(join(FIX, 'llama', 'model.safetensors'));
    const written = header(join(out, 'model.safetensors'));
    expect([...written]).toEqual([...input].sort(([a], [b]) => (a < b ? -1 : 1)));
    expect(written.get('lm_head.weight')?.dtype).toBe('F32');
    const diff = loraDiff(out, 'llama');
    console.log(`llama merged as F32: max |logit - lora| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    expect(greedyMatches(out, 'llama')).toEqual([true, true]);
  });

  it('--dtype float16 writes F16 and says so in config.json', () => {
    const out = join(tmp, 'llama-f16');
    const r = cli(['merge', '--model', join(FIX, 'llama'), '--delta', join(FIX, 'llama-lora'), '--out', out, '--dtype', 'float16']);
    expect(r.code, r.stderr).toBe(0);
    expect([...header(join(out, 'model.safetensors')).values()].every((e) => e.dtype === 'F16')).toBe(true);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype).toBe('float16');
    // float16 keeps 11 significant bits: closer than bfloat16's 8.
    expect(loraDiff(out, 'llama')).toBeLessThan(1e-2);
  });

  it('a sharded input gives the same shards and an index; tokenizer files are copied; a re-merge in another layout leaves no stale weights', () => {
    // qwen2 split into two shards, with tokenizer files beside it.
    const sharded = join(tmp, 'qwen2-sharded');
    mkdirSync(sharded);
    for (const f of ['config.json', 'generation_config.json']) copyFileSync(join(FIX, 'qwen2', f), join(sharded, f));
    const extras = {
      'tokenizer.json': '{"model":{}}',
      'tokenizer_config.json': '{"eos_token":"x"}',
      'chat_template.jinja': '{{ messages }}',
    };
    for (const [f, text] of Object.entries(extras)) writeFileSync(join(sharded, f), text);
    const { tensors } = readSafetensors(readFileSync(join(FIX, 'qwen2', 'model.safetensors')));
    const names = [...tensors.keys()].sort();
    const shards = { 'model-00001-of-00002.safetensors': names.slice(0, 9), 'model-00002-of-00002.safetensors': names.slice(9) };
    const weightMap: Record<string, string> = {};
    for (const [file, part] of Object.entries(shards)) {
      writeFileSync(join(sharded, file), writeSafetensors(new Map(part.map((n) => [n, { ...tensors.get(n)!, writeAs: 'BF16' as const }]))));
      for (const n of part) weightMap[n] = file;
    }
    writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));

    const out = join(tmp, 'qwen2-sharded-merged');
    const r = cli(['merge', '--model', sharded, '--delta', join(FIX, 'qwen2-lora'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 shards \+ model\.safetensors\.index\.json \(BF16\)/);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(index.weight_map).toEqual(weightMap);
    let dataBytes = 0;
    for (const [file, part] of Object.entries(shards)) {
      const h = header(join(out, file));
      expect([...h.keys()].sort()).toEqual(part);
      dataBytes += [...h.values()].reduce((n, e) => n + 2 * e.shape.reduce((a, b) => a * b, 1), 0);
    }
    expect(index.metadata.total_size).toBe(dataBytes);
    for (const [f, text] of Object.entries(extras)) expect(readFileSync(join(out, f), 'utf8')).toBe(text);
    // The same merged weights as from the single file.
    const single = readSafetensors(readFileSync(join(tmp, 'qwen2-merged', 'model.safetensors'))).tensors;
    for (const file of Object.keys(shards))
      for (const [k, t] of readSafetensors(readFileSync(join(out, file))).tensors)
        expect(Array.from(t.data), k).toEqual(Array.from(single.get(k)!.data));
    expect(loraDiff(out, 'qwen2')).toBeLessThan(BF16_TOLERANCE);

    // Merging the single-file model into the same --out replaces the shards (model.safetensors would win over them anyway).
    const again = cli(['merge', '--model', join(FIX, 'qwen2'), '--delta', join(FIX, 'qwen2-lora'), '--out', out]);
    expect(again.code, again.stderr).toBe(0);
    expect(readdirSync(out).filter((f) => f.includes('safetensors'))).toEqual(['model.safetensors']);
  });
});

describe('deltatune inspect on Llama / Qwen folders', () => {
  it.each(['llama', 'qwen2', 'qwen3'])('%s: Hugging Face site names, and a base count equal to the tensors in the file', (name) => {
    const config = JSON.parse(readFileSync(join(FIX, name, 'config.json'), 'utf8'));
    const r = cli(['inspect', '--model', join(FIX, name), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = r.json();
    expect(j.architecture).toBe(name);
    const linear = j.sites.filter((s: { kind: string }) => s.kind === 'linear').map((s: { name: string }) => s.name);
    const expected = Array.from({ length: config.num_hidden_layers }, (_, i) =>
      ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'].map(
        (m) => `model.layers.${i}.${m}`,
      ),
    ).flat();
    expect(linear).toEqual(expected);
    expect(j.sites.map((s: { name: string }) => s.name)).toContain('model.embed_tokens');
    // Independent count: every tensor in the file's header, each once (a tied head is not in the file).
    const inFile = [...header(join(FIX, name, 'model.safetensors')).values()].reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
    expect(j.parameters.base).toBe(inFile);
    expect(j.parameters.total).toBe(inFile);

    const text = cli(['inspect', '--model', join(FIX, name)]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^ {4}layers\n {6}0\n {8}self_attn\n/m);
    expect(text.stdout).toMatch(/^ {10}q_proj \[linear in=64 out=\d+\]$/m);
    expect(text.stdout).toMatch(new RegExp(`^backbone \\(frozen\\) +${inFile} +100\\.000 +no$`, 'm'));
  });

  it.each(['llama', 'qwen2', 'qwen3'])('%s: --method lora and the PEFT folder list their targets and counts', (name) => {
    const config = JSON.parse(readFileSync(join(FIX, name, 'config.json'), 'utf8'));
    const peft = JSON.parse(readFileSync(join(FIX, `${name}-lora`, 'adapter_config.json'), 'utf8'));
    const r = cli([
      'inspect',
      '--model',
      join(FIX, name),
      '--delta',
      join(FIX, `${name}-lora`),
      '--method',
      'lora',
      '--opt',
      'r=2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [saved, fresh] = r.json().deltas;
    const layers = Array.from({ length: config.num_hidden_layers }, (_, i) => i);
    const targets = (modules: string[]) =>
      layers.flatMap((i) =>
        modules.map(
          (m) => `model.layers.${i}.${m.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(m) ? 'mlp' : 'self_attn'}.${m}`,
        ),
      );
    expect([...saved.sites].sort()).toEqual(targets(peft.target_modules).sort());
    // The PEFT folder's count is the number of values in its file.
    const loraValues = [...header(join(FIX, `${name}-lora`, 'adapter_model.safetensors')).values()].reduce(
      (n, e) => n + e.shape.reduce((a, b) => a * b, 1),
      0,
    );
    expect(saved.parameters).toBe(loraValues);
    // deltatune's default LoRA targets q_proj and v_proj, r * (in + out) each.
    expect(fresh.sites).toEqual(targets(['q_proj', 'v_proj']));
    const text = cli(['inspect', '--model', join(FIX, name), '--method', 'lora']);
    expect(text.stdout).toMatch(
      /^lora \(lora\) at \d+ sites: model\.layers\.\{0,1\}\.self_attn\.q_proj, model\.layers\.\{0,1\}\.self_attn\.v_proj$/m,
    );
  });
});

describe('a sharded folder whose index names a missing shard', () => {
  it('inspect, forward and merge say so in one line, with the fix', () => {
    const dir = join(tmp, 'missing-shard');
    mkdirSync(dir);
    copyFileSync(join(FIX, 'qwen2', 'config.json'), join(dir, 'config.json'));
    const { tensors } = readSafetensors(readFileSync(join(FIX, 'qwen2', 'model.safetensors')));
    const names = [...tensors.keys()];
    writeFileSync(
      join(dir, 'model-00001-of-00002.safetensors'),
      writeSafetensors(new Map(names.slice(0, 5).map((n) => [n, tensors.get(n)!]))),
    );
    const weightMap = Object.fromEntries(names.map((n, i) => [n, `model-0000${i < 5 ? 1 : 2}-of-00002.safetensors`]));
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    for (const args of [
      ['inspect', '--model', dir],
      ['forward', '--model', dir, '--inputs', join(FIX, 'qwen2-reference.json')],
      ['merge', '--model', dir, '--delta', join(FIX, 'qwen2-lora'), '--out', join(tmp, 'missing-shard-merged')],
    ]) {
      const r = cli(args);
      expect(r.code, args[0]).toBe(1);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, args[0]).toHaveLength(2);
      expect(lines[0]).toMatch(/^error: shard model-00002-of-00002\.safetensors named in .*model\.safetensors\.index\.json is missing$/);
      expect(lines[1]).toMatch(/^ {2}fix: download every shard listed in the index$/);
    }
  });
});
