import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeTinyQwen3 } from '../../train/test/fixtures/tiny-qwen3';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const LLM = join(ROOT, 'fixtures/llm-reference');
const tmp = mkdtempSync(join(tmpdir(), 'generate-'));

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 300_000, input });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

const reference = (name: string) => JSON.parse(readFileSync(join(LLM, `${name}-reference.json`), 'utf8'));

describe('deltatune generate on the Llama-family references', () => {
  it.each(['llama', 'qwen2'])('%s: --input-ids gives the reference greedy ids, base and with the PEFT LoRA merged and unmerged', (name) => {
    const ref = reference(name);
    const args = (extra: string[]) => [
      'generate',
      '--model',
      join(LLM, name),
      ...ref.greedy.flatMap((g: { prompt_ids: number[] }) => ['--input-ids', g.prompt_ids.join(',')]),
      '--max-new-tokens',
      String(ref.greedy[0].new_ids.length),
      '--ignore-eos',
      '--json',
      ...extra,
    ];
    const base = cli(args([]));
    expect(base.code, base.stderr).toBe(0);
    expect(base.json().rows.map((r: { new_ids: number[] }) => r.new_ids)).toEqual(ref.greedy.map((g: { new_ids: number[] }) => g.new_ids));
    for (const merge of [[], ['--merge']]) {
      const r = cli(args(['--delta', join(LLM, `${name}-lora`), ...merge]));
      expect(r.code, r.stderr).toBe(0);
      expect(
        r.json().rows.map((x: { new_ids: number[] }) => x.new_ids),
        `merge ${merge}`,
      ).toEqual(ref.greedy_lora.map((g: { new_ids: number[] }) => g.new_ids));
      expect(r.json().deltas[0].merged).toBe(merge.length > 0);
    }
  });
});

describe('deltatune generate and chat with a tokenizer (a random Qwen3 with the real Qwen3 tokenizer)', () => {
  let model: string;
  beforeAll(() => {
    model = writeTinyQwen3(join(tmp, 'qwen3'));
  });

  it('streams the text --json reports; --chat wraps the prompt in the chat template; --stop cuts before the string', () => {
    const json = cli([
      'generate',
      '--model',
      model,
      '--prompt',
      'The capital of France is',
      '--max-new-tokens',
      '12',
      '--ignore-eos',
      '--json',
    ]);
    expect(json.code, json.stderr).toBe(0);
    const [row] = json.json().rows;
    expect(row.new_ids).toHaveLength(12);
    const streamed = cli(['generate', '--model', model, '--prompt', 'The capital of France is', '--max-new-tokens', '12', '--ignore-eos']);
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(streamed.stdout).toBe(`${row.text}\n`);
    expect(streamed.stderr).toMatch(/12 tokens in .* tokens\/s\), stopped by length/);
    const chat = cli(['generate', '--model', model, '--prompt', 'Hi', '--chat', '--max-new-tokens', '2', '--json']);
    // <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n: Qwen3's template with thinking off, as SFT renders a reply.
    expect(chat.json().rows[0].prompt_ids).toEqual([151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271]);
    const stop = row.text.slice(3, 6);
    const cut = cli([
      'generate',
      '--model',
      model,
      '--prompt',
      'The capital of France is',
      '--max-new-tokens',
      '12',
      '--ignore-eos',
      '--stop',
      stop,
    ]);
    expect(cut.stdout).toBe(`${row.text.slice(0, row.text.indexOf(stop))}\n`);
    expect(cut.stderr).toMatch(/stopped by stop/);
  });

  it('sampling is seeded: one seed, one continuation; another seed, another', () => {
    const sample = (seed: number) =>
      cli([
        'generate',
        '--model',
        model,
        '--prompt',
        'Once',
        '--temperature',
        '1.2',
        '--top-k',
        '50',
        '--seed',
        String(seed),
        '--max-new-tokens',
        '10',
        '--ignore-eos',
        '--json',
      ]).json().rows[0].new_ids;
    const a = sample(1);
    expect(sample(1)).toEqual(a);
    expect([2, 3, 4].map(sample).some((b) => b.join() !== a.join())).toBe(true);
  });

  it('chat: each stdin line is a user turn; the first reply is what generate --chat gives for it', () => {
    const r = cli(['chat', '--model', model, '--max-new-tokens', '6'], 'Hello there\nAnd again\n');
    expect(r.code, r.stderr).toBe(0);
    const replies = r.stdout.split('\n').filter((l) => l.length > 0);
    const alone = cli(['generate', '--model', model, '--prompt', 'Hello there', '--chat', '--max-new-tokens', '6', '--json']).json().rows[0]
      .text;
    expect(r.stdout.startsWith(`${alone}\n`)).toBe(true);
    expect(replies.length).toBeGreaterThanOrEqual(1);
    const none = cli(['chat', '--model', join(LLM, 'llama')], 'hi\n');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/has no tokenizer\.json/);
  });
});
