import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '@deltatune/core';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const FIX = join(ROOT, 'fixtures/peft-reference');
const tmp = mkdtempSync(join(tmpdir(), 'cli-'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

/** Kills `child` (SIGKILL) as soon as `ready()` holds; fails if it exits first. Resolves once it is gone. */
async function killWhen(child: ChildProcess, ready: () => boolean): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (ready()) {
        clearInterval(timer);
        child.kill('SIGKILL');
        resolve();
      }
    }, 20);
    child.on('exit', () => {
      clearInterval(timer);
      reject(new Error('the process finished before it could be killed'));
    });
  });
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.on('exit', r));
}

function maxAbsDiff(a: unknown, b: unknown): number {
  if (Array.isArray(a) && Array.isArray(b)) return Math.max(...a.map((x, i) => maxAbsDiff(x, b[i])));
  return Math.abs((a as number) - (b as number));
}

describe('deltatune forward against the PyTorch references', () => {
  it('BERT base and with the PEFT LoRA, unmerged and merged', () => {
    const ref = JSON.parse(readFileSync(join(FIX, 'bert-reference.json'), 'utf8'));
    for (const [extra, key] of [
      [[], 'base'],
      [['--delta', join(FIX, 'bert-lora')], 'lora'],
      [['--delta', join(FIX, 'bert-lora'), '--merge'], 'lora'],
    ] as const) {
      const out = join(tmp, `bert-${key}.json`);
      const r = cli(['forward', '--model', join(FIX, 'bert'), '--inputs', join(FIX, 'bert-reference.json'), '--out', out, ...extra]);
      expect(r.code, r.stderr).toBe(0);
      const got = JSON.parse(readFileSync(out, 'utf8'));
      expect(maxAbsDiff(got.last_hidden_state, ref[key].last_hidden_state)).toBeLessThan(1e-4);
      expect(maxAbsDiff(got.pooler_output, ref[key].pooler_output)).toBeLessThan(1e-4);
    }
  });

  it('GPT-2 logits, base and LoRA merged', () => {
    const ref = JSON.parse(readFileSync(join(FIX, 'gpt2-reference.json'), 'utf8'));
    for (const [extra, key] of [
      [[], 'base'],
      [['--delta', join(FIX, 'gpt2-lora'), '--merge'], 'lora'],
    ] as const) {
      const out = join(tmp, `gpt2-${key}.json`);
      const r = cli(['forward', '--model', join(FIX, 'gpt2'), '--inputs', join(FIX, 'gpt2-reference.json'), '--out', out, ...extra]);
      expect(r.code, r.stderr).toBe(0);
      expect(maxAbsDiff(JSON.parse(readFileSync(out, 'utf8')).logits, ref[key].logits)).toBeLessThan(1e-4);
    }
  });

  it('USE-lite embeddings from text', () => {
    const r = cli(['forward', '--model', 'use-lite', '--text', 'How old are you?', '--text', 'What is your age?', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [a, b] = r.json().embedding as number[][];
    expect(a).toHaveLength(512);
    expect(a.reduce((s, x, i) => s + x * b[i], 0)).toBeGreaterThan(0.6);
  });
});

describe('deltatune merge', () => {
  it('writes a Hugging Face folder with the PEFT LoRA folded in, which runs as the adapted model (< 1e-4)', () => {
    const ref = JSON.parse(readFileSync(join(FIX, 'bert-reference.json'), 'utf8'));
    const merged = join(tmp, 'bert-merged');
    const m = cli(['merge', '--model', join(FIX, 'bert'), '--delta', join(FIX, 'bert-lora'), '--out', merged]);
    expect(m.code, m.stderr).toBe(0);
    const out = join(tmp, 'merged-out.json');
    const r = cli(['forward', '--model', merged, '--inputs', join(FIX, 'bert-reference.json'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(readFileSync(out, 'utf8'));
    expect(maxAbsDiff(got.last_hidden_state, ref.lora.last_hidden_state)).toBeLessThan(1e-4);
    expect(maxAbsDiff(got.pooler_output, ref.lora.pooler_output)).toBeLessThan(1e-4);
  });
});

describe('deltatune merge, bare GPT2Model', () => {
  it('a checkpoint without the transformer. prefix gets the LoRA folded in under its own names (< 1e-4)', () => {
    // The fixture is a GPT2LMHeadModel; a bare GPT2Model holds the same tensors without the prefix.
    const bare = join(tmp, 'gpt2-bare');
    mkdirSync(bare);
    const { tensors } = readSafetensors(readFileSync(join(FIX, 'gpt2', 'model.safetensors')), 'fixture');
    const renamed = new Map(
      [...tensors].filter(([k]) => k.startsWith('transformer.')).map(([k, t]) => [k.slice('transformer.'.length), t]),
    );
    writeFileSync(join(bare, 'model.safetensors'), writeSafetensors(renamed, { format: 'pt' }));
    copyFileSync(join(FIX, 'gpt2', 'config.json'), join(bare, 'config.json'));
    const merged = join(tmp, 'gpt2-bare-merged');
    const m = cli(['merge', '--model', bare, '--delta', join(FIX, 'gpt2-lora'), '--out', merged]);
    expect(m.code, m.stderr).toBe(0);
    const written = readSafetensors(readFileSync(join(merged, 'model.safetensors')), 'merged').tensors;
    expect([...written.keys()].sort()).toEqual([...renamed.keys()].sort());
    const out = join(tmp, 'gpt2-bare-merged.json');
    const r = cli(['forward', '--model', merged, '--inputs', join(FIX, 'gpt2-reference.json'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const ref = JSON.parse(readFileSync(join(FIX, 'gpt2-reference.json'), 'utf8'));
    expect(maxAbsDiff(JSON.parse(readFileSync(out, 'utf8')).logits, ref.lora.logits)).toBeLessThan(1e-4);
  });
});

describe('deltatune bench', () => {
  const tiny = ['--size', 'tiny', '--batch', '2', '--seq', '8', '--steps', '1', '--warmup', '0', '--methods', 'lora,full', '--json'];

  it('runs on wasm and reports every column: LoRA trains and stores a small fraction of full fine-tuning', () => {
    const r = cli(['bench', '--backend', 'wasm', ...tiny]);
    expect(r.code, r.stderr).toBe(0);
    const { backend, rows } = r.json();
    expect(backend).toBe('wasm');
    const [lora, full] = rows;
    expect(lora).toMatchObject({ workload: 'lora', fused: false });
    for (const row of rows)
      for (const k of [
        'msPerStep',
        'hostMsPerStep',
        'tokensPerSecond',
        'dispatchesPerStep',
        'kernelsPerStep',
        'peakBytes',
        'checkpointBytes',
      ])
        expect(row[k], k).toBeGreaterThan(0);
    expect(lora.trainableParameters).toBeLessThan(full.trainableParameters / 20);
    expect(lora.checkpointBytes).toBeLessThan(full.checkpointBytes / 20);
  });

  it('on webgpu (where this machine has an adapter), fused kernels cut dispatches per step at least 2x at this size', (ctx) => {
    const r = cli(['bench', '--backend', 'webgpu', '--fused', 'both', ...tiny]);
    if (r.code !== 0 && /backend "webgpu" is not available/.test(r.stderr)) {
      // As test-webgpu.ts's probeWebgpu: DELTATUNE_REQUIRE_WEBGPU=1 (set by .ci/run) fails, not skips.
      if (process.env.DELTATUNE_REQUIRE_WEBGPU !== '1') ctx.skip();
      throw new Error(
        `DELTATUNE_REQUIRE_WEBGPU=1, but the webgpu backend is not available, so the webgpu tests cannot run: ${r.stderr.trim()}\n` +
          'fix: give this machine a WebGPU adapter (Debian 12: bash scripts/install-lavapipe.sh), or let the webgpu tests skip: ' +
          'unset DELTATUNE_REQUIRE_WEBGPU (CI: run .ci/run with DELTATUNE_ALLOW_NO_WEBGPU=1)',
      );
    }
    expect(r.code, r.stderr).toBe(0);
    const rows = r.json().rows as Array<{
      workload: string;
      fused: boolean;
      dispatchesPerStep: number;
      dispatchKinds: Record<string, number>;
    }>;
    for (const workload of ['lora', 'full']) {
      const plain = rows.find((x) => x.workload === workload && !x.fused)!;
      const fused = rows.find((x) => x.workload === workload && x.fused)!;
      expect(fused.dispatchesPerStep * 2, workload).toBeLessThan(plain.dispatchesPerStep);
      expect(Object.keys(fused.dispatchKinds).some((k) => k.startsWith('deltatune_'))).toBe(true);
      expect(Object.keys(plain.dispatchKinds).some((k) => k.startsWith('deltatune_'))).toBe(false);
    }
  });
});

describe('deltatune inspect', () => {
  it('reports LoRA parameters equal to r * (in + out) per site, on all three architectures', () => {
    const cases: Array<[string, number]> = [
      [join(FIX, 'bert'), 2 * 2 * 8 * (32 + 32)], // 2 layers x query,value
      [join(FIX, 'gpt2'), 2 * 8 * (32 + 96)], // 2 layers x c_attn
      ['use-lite', 2 * 8 * (256 + 256) + 2 * 8 * (512 + 512)],
    ];
    for (const [model, expected] of cases) {
      const r = cli(['inspect', '--model', model, '--method', 'lora', '--opt', 'r=8', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const j = r.json();
      expect(j.deltas[0].parameters).toBe(expected);
      expect(j.parameters.trainable).toBe(expected);
      expect(j.sites.length).toBeGreaterThan(10);
    }
  });

  it("reports DoRA, VeRA, LoHa and LoKr counts by each method's definition (r=4 on query, value; H=32, L=2)", () => {
    const H = 32;
    const L = 2;
    const cases: Array<[string, number]> = [
      ['dora', 2 * L * (8 * H + H)], // LoRA's r(in + out) plus a magnitude per output feature
      ['vera', 2 * L * (4 + H)], // lambda_d (r) and lambda_b (out); the shared A, B are frozen buffers
      ['loha', 2 * L * (16 * H)], // two rank-r pairs: 2 r (in + out)
      ['lokr', 2 * L * (4 * 4 + 8 * 8)], // 32 = 4 x 8: w1 [4, 4] and, with r = 4 >= 8 / 2, a full w2 [8, 8]
    ];
    for (const [method, expected] of cases) {
      const r = cli(['inspect', '--model', join(FIX, 'bert'), '--method', method, '--opt', 'r=4', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json().deltas[0].parameters).toBe(expected);
      expect(r.json().parameters.trainable).toBe(expected);
    }
  });

  it('reports adapter and BitFit counts on all three architectures', () => {
    const cases: Array<[string, number, number]> = [
      // model, houlsby adapter (reduction 16: m = hidden/16), all biases + layer norms
      [join(FIX, 'bert'), 2 * 2 * (32 * 2 + 2 + 2 * 32 + 32), 640],
      [join(FIX, 'gpt2'), 2 * 2 * (32 * 2 + 2 + 2 * 32 + 32), 736],
      ['use-lite', 2 * 2 * (512 * 32 + 32 + 32 * 512 + 512), 3840 + 4096 + 512 + 1792], // biases of layer 0, layer 1, pooler; layer norms
    ];
    for (const [model, adapterCount, bitfitCount] of cases) {
      const a = cli(['inspect', '--model', model, '--method', 'adapter', '--json']);
      expect(a.code, a.stderr).toBe(0);
      expect(a.json().deltas[0].parameters).toBe(adapterCount);
      const b = cli(['inspect', '--model', model, '--method', 'bitfit', '--json']);
      expect(b.json().deltas[0].parameters).toBe(bitfitCount);
    }
  });

  it('reports prefix and prompt counts; prompt init from text', () => {
    const prefix = cli(['inspect', '--model', 'use-lite', '--method', 'prefix', '--opt', 'virtualTokens=4', '--json']);
    expect(prefix.code, prefix.stderr).toBe(0);
    expect(prefix.json().deltas[0].parameters).toBe(4 * (2 * 256 + 2 * 512));
    const prompt = cli(['inspect', '--model', join(FIX, 'bert'), '--method', 'prompt', '--opt', 'virtualTokens=6', '--json']);
    expect(prompt.json().deltas[0].parameters).toBe(6 * 32);
    const text = cli([
      'inspect',
      '--model',
      'use-lite',
      '--method',
      'prompt',
      '--opt',
      'initText=is this spam',
      '--opt',
      'virtualTokens=3',
      '--json',
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.json().deltas[0].parameters).toBe(3 * 256);
  });

  it('several --method options: each delta counted, and the total', () => {
    const r = cli([
      'inspect',
      '--model',
      join(FIX, 'bert'),
      '--method',
      'lora',
      '--opt',
      'r=4',
      '--method',
      'bitfit',
      '--method',
      'adapter',
      '--method',
      'prefix',
      '--opt',
      'virtualTokens=2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const j = r.json();
    const counts = Object.fromEntries(j.deltas.map((d: { name: string; parameters: number }) => [d.name, d.parameters]));
    expect(counts).toEqual({ lora: 2 * 2 * 4 * 64, bitfit: 640, adapter: 2 * 2 * (32 * 2 + 2 + 2 * 32 + 32), prefix: 2 * 2 * 2 * 32 });
    expect(j.parameters.total).toBe(j.parameters.base + Object.values(counts).reduce((a: number, b) => a + (b as number), 0));
  });

  it('prints the site tree and table without --json', () => {
    const r = cli(['inspect', '--model', join(FIX, 'bert')]);
    expect(r.stdout).toMatch(/query \[linear in=32 out=32\]/);
    expect(r.stdout).toMatch(/backbone \(frozen\)/);
  });
});

describe('errors are one line plus the fix', () => {
  it('names the problem, no stack trace', () => {
    const r = cli(['inspect', '--model', join(FIX, 'bert'), '--method', 'lora', '--opt', 'targets=qurey']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: target "qurey" matches no linear site; closest: .*query/);
    expect(r.stderr).toMatch(/\n {2}fix: /);
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    const missing = cli(['forward', '--model', join(tmp, 'nowhere'), '--text', 'x']);
    expect(missing.stderr).toMatch(/config.json not found/);
    const unknown = cli(['train', '--modle', 'use-lite']);
    expect(unknown.stderr).toMatch(/does not take --modle/);
    const badRate = cli(['train', '--method', 'lora', '--delta-lr', 'lora']);
    expect(badRate.stderr).toMatch(/^error: --delta-lr lora: expected NAME=LR/);
    const tiny = ['--limit-train', '16', '--limit-validation', '8', '--limit-test', '8', '--steps', '1', '--out', join(tmp, 'rate')];
    const wrongName = cli(['train', '--method', 'lora', '--delta-lr', 'prompt=0.3', ...tiny]);
    expect(wrongName.code).toBe(1);
    expect(wrongName.stderr).toMatch(/delta "prompt", which is not a trained delta here\n {2}fix: trained deltas: lora/);
  });
});

describe('train, eval and resume', () => {
  const common = [
    '--model',
    'use-lite',
    '--dataset',
    'spam',
    '--method',
    'lora',
    '--opt',
    'r=4',
    '--eval-every',
    '3',
    '--batch-size',
    '8',
    '--max-length',
    '16',
    '--limit-train',
    '96',
    '--limit-validation',
    '24',
    '--limit-test',
    '48',
    '--seed',
    '5',
    '--lr',
    '0.003',
  ];

  it('train --json, then eval reproduces the test accuracy it printed', () => {
    const out = join(tmp, 'run-a');
    const r = cli(['train', ...common, '--steps', '30', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = r.json();
    expect(result).toMatchObject({ method: 'lora', savedTo: join(out, 'delta') });
    expect(result.trainableParameters).toBe(4 * 2 * (256 + 256) + 4 * 2 * (512 + 512) + 512 * 2 + 2);
    for (const f of [
      'delta/adapter_config.json',
      'delta/adapter_model.safetensors',
      'delta/classifier.json',
      'curve.svg',
      'curve.png',
      'metrics.json',
    ]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const e = cli(['eval', '--delta', join(out, 'delta'), '--json']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.json().accuracy).toBe(result.accuracy);
    expect(e.json().examples).toBe(48);
  });

  it('a run killed mid-way and resumed ends with the same weights as an uninterrupted one', async () => {
    const full = join(tmp, 'full');
    const killed = join(tmp, 'killed');
    const args = ['train', ...common, '--steps', '60'];
    expect(cli([...args, '--out', full]).code).toBe(0);
    const child = spawn(process.execPath, [BIN, ...args, '--out', killed], { cwd: ROOT, stdio: 'ignore' });
    const state = join(killed, 'checkpoint', 'state.json');
    const stepOf = () => (existsSync(state) ? JSON.parse(readFileSync(state, 'utf8')).step : 0);
    await killWhen(child, () => stepOf() >= 9);
    const killedAt = stepOf();
    expect(killedAt).toBeLessThan(60);
    expect(existsSync(join(killed, 'delta'))).toBe(false);
    const resumed = cli([...args, '--out', killed, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resumed from the checkpoint at step ${killedAt}`));
    for (const f of ['delta/adapter_model.safetensors', 'delta/classifier.safetensors']) {
      expect(Buffer.compare(readFileSync(join(full, f)), readFileSync(join(killed, f))), f).toBe(0);
    }
  });

  it('train reads a user JSONL file with named columns', () => {
    const file = join(tmp, 'mine.jsonl');
    writeFileSync(
      file,
      Array.from({ length: 40 }, (_, i) =>
        JSON.stringify({ body: i % 2 ? 'great film, loved it' : 'awful, boring mess', y: i % 2 ? 'pos' : 'neg' }),
      ).join('\n'),
    );
    const r = cli([
      'train',
      '--model',
      'use-lite',
      '--dataset',
      file,
      '--text-column',
      'body',
      '--label-column',
      'y',
      '--steps',
      '10',
      '--batch-size',
      '8',
      '--lr',
      '0.01',
      '--out',
      join(tmp, 'mine'),
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().accuracy).toBe(1);
  });
});

describe('deltatune experiment', () => {
  it('runs a small grid (2 methods x 1 task x 2 seeds), survives a kill, resumes, writes the table and plots', async () => {
    const grid = join(tmp, 'grid.json');
    writeFileSync(
      grid,
      JSON.stringify({
        name: 'small',
        model: 'use-lite',
        target: 0.6,
        tasks: [{ dataset: 'spam', limits: { train: 48, validation: 16, test: 32 } }],
        seeds: [0, 1],
        budgets: [{ name: 'tiny', steps: 6, batchSize: 8, maxLength: 16, learningRate: 0.003, evalEvery: 2 }],
        methods: [
          { name: 'lora', deltas: [{ method: 'lora', options: { r: 2 } }] },
          {
            name: 'prompt+bitfit (seq)',
            deltas: [{ method: 'prompt', options: { virtualTokens: 2 }, learningRate: 0.1 }, { method: 'bitfit' }],
            schedule: 'sequential',
          },
        ],
      }),
    );
    const out = join(tmp, 'experiment');
    const cells = join(out, 'cells');
    const child = spawn(process.execPath, [BIN, 'experiment', grid, '--out', out], { cwd: ROOT, stdio: 'ignore' });
    await killWhen(child, () => existsSync(cells) && readdirSync(cells).filter((f) => f.endsWith('.json')).length >= 1);
    const doneBefore = readdirSync(cells).filter((f) => f.endsWith('.json')).length;
    expect(doneBefore).toBeLessThan(4);
    const r = cli(['experiment', grid, '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = r.json();
    expect(j).toMatchObject({ cells: 4, completed: 4, skipped: doneBefore });
    expect(j.rows.map((x: { method: string }) => x.method)).toEqual(['lora', 'prompt+bitfit (seq)']);
    expect(j.rows[0].seeds).toBe(2);
    const lines = readFileSync(join(out, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    for (const l of lines) expect(l).toHaveProperty('stepsToTarget');
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/\| spam \| lora \| [\d.]+ \| [\d.]+ ± [\d.]+ \|/);
    for (const f of ['convergence-spam.svg', 'convergence-spam.png', 'score-vs-params-spam.svg', 'score-vs-params-spam.png'])
      expect(existsSync(join(out, f)), f).toBe(true);
  });
});

describe('train and experiment name deltas alike', () => {
  it('two LoRAs are lora and lora_2 in train --json and in results.jsonl, lora_2 with the rate --delta-lr / the grid gave it', () => {
    const budget = { steps: 2, batchSize: 8, maxLength: 16, learningRate: 0.003, evalEvery: 0 };
    const limits = { train: 32, validation: 8, test: 8 };
    const expected = [
      { name: 'lora', method: 'lora', trained: true },
      { name: 'lora_2', method: 'lora', trained: true, learningRate: 0.05 },
    ];
    const out = join(tmp, 'two-loras');
    const trained = cli([
      ...['train', '--model', 'use-lite', '--dataset', 'spam', '--method', 'lora', '--opt', 'r=2', '--method', 'lora', '--opt', 'r=4'],
      ...['--delta-lr', 'lora_2=0.05', '--steps', '2', '--batch-size', '8', '--max-length', '16', '--lr', '0.003', '--eval-every', '0'],
      ...['--limit-train', '32', '--limit-validation', '8', '--limit-test', '8', '--out', out, '--json'],
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.json().deltas).toEqual(expected);
    for (const name of ['lora', 'lora_2']) expect(existsSync(join(out, 'deltas', name, 'adapter_config.json')), name).toBe(true);
    const grid = join(tmp, 'two-loras.json');
    writeFileSync(
      grid,
      JSON.stringify({
        name: 'two-loras',
        tasks: [{ dataset: 'spam', limits }],
        seeds: [0],
        budgets: [{ name: 'tiny', ...budget }],
        methods: [
          {
            name: 'lora x2',
            deltas: [
              { method: 'lora', options: { r: 2 } },
              { method: 'lora', options: { r: 4 }, learningRate: 0.05 },
            ],
          },
        ],
      }),
    );
    const experiment = cli(['experiment', grid, '--out', join(tmp, 'two-loras-experiment'), '--json']);
    expect(experiment.code, experiment.stderr).toBe(0);
    const [cell] = readFileSync(join(tmp, 'two-loras-experiment', 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(cell.deltas).toEqual(expected);
    // A name neither gives: refused, listing the names both use.
    const wrong = cli([
      'train',
      '--method',
      'lora',
      '--method',
      'lora',
      '--delta-lr',
      'lora_1=0.05',
      '--steps',
      '1',
      '--out',
      join(tmp, 'x'),
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/fix: trained deltas: lora, lora_2/);
  });
});
