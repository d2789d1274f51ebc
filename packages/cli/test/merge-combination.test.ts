import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, registerMethod, writeSafetensors, type Backbone } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { loadDelta } from '@deltatune/node';
import { loraMethod } from '@deltatune/lora';
import { mergeWeightDeltas, type MergeWeightDeltasOptions } from '@deltatune/compose';

/*
 * `deltatune merge --combination ...`: the flags reach mergeWeightDeltas (whose numbers
 * packages/compose/test/merge-reference.test.ts checks against PyTorch), and bad flags are refused
 * with a line and a fix before anything is loaded. The CLI runs as built: build first.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const FIX = join(ROOT, 'fixtures/peft-reference');
const tmp = mkdtempSync(join(tmpdir(), 'merge-combination-'));
const LORA1 = join(FIX, 'bert-lora');
const LORA2 = join(tmp, 'lora2');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const merge = (out: string, ...flags: string[]) =>
  cli(['merge', '--backend', 'wasm', '--model', join(FIX, 'bert'), '--delta', LORA1, '--delta', LORA2, '--out', join(tmp, out), ...flags]);

/** The same merge in this process: the deltas loaded on a fresh BERT and combined by compose. */
async function inProcess(weights: number[], options: MergeWeightDeltasOptions): Promise<Backbone> {
  const model = loadHuggingFaceFolder(join(FIX, 'bert'));
  const deltas = [LORA1, LORA2].map((dir) => loadDelta(model, dir).delta);
  await mergeWeightDeltas(model, deltas, weights, options);
  for (const d of deltas) d.detach();
  return model;
}

/** Largest |a - b| over every parameter of two backbones. */
function maxDiff(a: Backbone, b: Backbone): number {
  let m = 0;
  for (const [k, v] of a.parameters) {
    const [x, y] = [v.dataSync(), b.parameters.get(k)!.dataSync()];
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  return m;
}

beforeAll(() => {
  registerMethod(loraMethod);
  // A second LoRA on the same targets: the fixture's, with B negated and scaled and both factors shifted.
  cpSync(LORA1, LORA2, { recursive: true });
  const file = join(LORA2, 'adapter_model.safetensors');
  const { tensors } = readSafetensors(readFileSync(file));
  const changed = [...tensors].map(([name, t], k) => {
    const data = Float32Array.from(t.data, (x, i) => (name.includes('lora_B') ? -0.7 * x : x) + 0.05 * Math.sin(i + k));
    return [name, { dtype: 'float32' as const, shape: t.shape, data }] as const;
  });
  writeFileSync(file, writeSafetensors(new Map(changed)));
});

describe('deltatune merge --combination', () => {
  beforeAll(() => {
    const r = merge('default');
    expect(r.code, r.stderr).toBe(0);
    // The default (no combination flag) says nothing new: the line it printed before these flags.
    expect(r.stdout).toBe(`merged bert-lora (lora), lora2 (lora) into ${join(tmp, 'default')}: model.safetensors (F32)\n`);
  });

  it.each([
    ['ties', ['--combination', 'ties', '--density', '0.5', '--weights', '1,0.5'], [1, 0.5], { combination: 'ties', density: 0.5 }],
    [
      'dare_ties, frequency',
      ['--combination', 'dare_ties', '--density', '0.6', '--majority-sign-method', 'frequency', '--seed', '3'],
      [1, 1],
      { combination: 'dare_ties', density: 0.6, majoritySignMethod: 'frequency', seed: 3 },
    ],
    [
      'magnitude_prune',
      ['--combination', 'magnitude_prune', '--density', '0.3', '--weights', '0.5,-1'],
      [0.5, -1],
      { combination: 'magnitude_prune', density: 0.3 },
    ],
  ] as const)('%s: the written weights are what mergeWeightDeltas makes of the same deltas', async (label, flags, weights, options) => {
    const out = `merged-${label.split(',')[0]}`;
    const r = merge(out, ...flags, '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.combination).toEqual(options);
    expect(j.weights).toEqual(weights);
    expect(JSON.parse(readFileSync(join(tmp, out, '.deltatune.json'), 'utf8')).settings.combination).toEqual(options);
    const written = loadHuggingFaceFolder(join(tmp, out));
    const expected = await inProcess([...weights], options);
    expect(maxDiff(written, expected)).toBe(0);
    // Not the plain fold of both (which would be the default): the combination did something.
    const summed = loadHuggingFaceFolder(join(tmp, 'default'));
    expect(maxDiff(written, summed)).toBeGreaterThan(1e-3);
    for (const m of [written, expected, summed]) m.dispose();
  });

  it('--weights alone is task arithmetic: weights 1,1 match folding both in one after the other (< 1e-6)', () => {
    const r = merge('linear', '--weights', '1,1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(linear, weights 1,1\) into /);
    const [linear, summed] = [loadHuggingFaceFolder(join(tmp, 'linear')), loadHuggingFaceFolder(join(tmp, 'default'))];
    expect(maxDiff(linear, summed)).toBeLessThan(1e-6);
    linear.dispose();
    summed.dispose();
  });

  it.each([
    [['--weights', '1'], '--weights has 1 value for 2 --delta', 'give one weight per --delta, in order: e.g. --weights 0.5,0.5'],
    [['--weights', '1,x'], '--weights must be comma-separated numbers, got "1,x"', 'e.g. --weights 0.5,0.5'],
    [
      ['--combination', 'ties', '--density', '0'],
      '--density must be a number in (0, 1], got "0"',
      'e.g. --density 0.5 (1 keeps every value)',
    ],
    [
      ['--combination', 'dare_ties', '--density', '1.5'],
      '--density must be a number in (0, 1], got "1.5"',
      'e.g. --density 0.5 (1 keeps every value)',
    ],
    [
      ['--combination', 'ties'],
      '--combination ties needs --density (the fraction of each weight change kept)',
      'e.g. --combination ties --density 0.5',
    ],
    [
      ['--combination', 'average'],
      '--combination must be one of linear, ties, dare_linear, dare_ties, magnitude_prune, got "average"',
      'e.g. --combination linear',
    ],
    [
      ['--combination', 'linear', '--density', '0.5'],
      '--density is for ties, dare_linear, dare_ties and magnitude_prune; linear keeps every value',
      'drop --density, or pick --combination ties',
    ],
    [['--density', '0.5'], '--density needs --combination', 'e.g. --combination ties --density 0.5 --weights 1,1'],
    [
      ['--combination', 'magnitude_prune', '--density', '0.5', '--majority-sign-method', 'total'],
      '--majority-sign-method is for ties and dare_ties, not magnitude_prune',
      'drop it, or pick --combination ties',
    ],
    [
      ['--combination', 'ties', '--density', '0.5', '--seed', '1'],
      '--seed is for dare_linear and dare_ties (ties draws nothing at random)',
      'drop --seed, or pick --combination dare_ties',
    ],
  ])('refuses %j: exit 1, one line and a fix, nothing written', (flags, message, fix) => {
    const r = merge('refused', ...flags);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: ${message}\n  fix: ${fix}\n`);
    expect(existsSync(join(tmp, 'refused'))).toBe(false);
  });
});
