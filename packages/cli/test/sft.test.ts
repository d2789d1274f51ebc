import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { reverseTaskLines, writeTinyQwen3 } from '../../train/test/fixtures/tiny-qwen3';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const tmp = mkdtempSync(join(tmpdir(), 'cli-sft-'));
const model = writeTinyQwen3(join(tmp, 'qwen3'));
const data = join(tmp, 'reverse.jsonl');
writeFileSync(data, reverseTaskLines(120).join('\n') + '\n');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TRAIN = ['train', '--model', model, '--task', 'sft', '--method', 'lora', '--opt', 'targets=q_proj,v_proj', '--opt', 'r=8'];
const SHORT = ['--steps', '12', '--batch-size', '16', '--max-length', '24', '--lr', '0.05', '--warmup', '2', '--eval-every', '6'];

describe('deltatune train --task sft', () => {
  it('trains LoRA on prompt/completion lines: delta/, metrics.json (completion loss, perplexity), samples.jsonl; eval agrees', () => {
    const out = join(tmp, 'run');
    const r = cli([...TRAIN, '--dataset', data, ...SHORT, '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(out, 'delta'))).toEqual(
      expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors', 'task.json']),
    );
    expect(JSON.parse(readFileSync(join(out, 'delta', 'task.json'), 'utf8')).task).toBe('sft');
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.test.perplexity).toBeCloseTo(Math.exp(metrics.test.loss), 3);
    // Below a uniform guess over the 151680 ids, which the random model starts above.
    expect(metrics.test.loss).toBeLessThan(Math.log(151680));
    expect(metrics.evals.at(-1).metrics.loss).toBeLessThan(metrics.evals[0].metrics.loss);
    expect(metrics.samples).toBe(join(out, 'samples.jsonl'));
    const samples = readFileSync(join(out, 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(samples).toHaveLength(4);
    for (const s of samples) {
      expect(s.prompt).toMatch(/^Reverse: [a-e] [a-e] [a-e]\n$/);
      expect(s.reference).toMatch(/^[a-e] [a-e] [a-e]$/);
      expect(typeof s.generation).toBe('string');
      expect(typeof s.before).toBe('string');
      expect(['eos', 'length']).toContain(s.finish);
    }
    expect(r.stderr).toMatch(/completion loss [\d.]+, perplexity [\d.]+/);

    const e = cli(['eval', '--delta', join(out, 'delta'), '--json']);
    expect(e.code, e.stderr).toBe(0);
    const scored = JSON.parse(e.stdout);
    expect(scored.task).toBe('sft');
    expect(scored.loss).toBeCloseTo(metrics.test.loss, 4);
  });

  it('a bad line exits 1 naming file:line, what is wrong and a fix, before any folder is written', () => {
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, [...reverseTaskLines(5), '{"messages": [{"role": "user", "content": "hi"}]}'].join('\n'));
    const out = join(tmp, 'bad-run');
    const r = cli([...TRAIN, '--dataset', bad, ...SHORT, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${bad}:6: the conversation has no assistant turn \\(roles: user\\)`));
    expect(r.stderr).toMatch(/fix: /);
    expect(existsSync(out)).toBe(false);
  });

  it('messages with a tokenizer without a chat template exit 1, pointing at prompt/completion', () => {
    const plain = join(tmp, 'no-template');
    mkdirSync(plain);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'generation_config.json'])
      writeFileSync(join(plain, f), readFileSync(join(model, f)));
    const config = JSON.parse(readFileSync(join(model, 'tokenizer_config.json'), 'utf8'));
    delete config.chat_template;
    writeFileSync(join(plain, 'tokenizer_config.json'), JSON.stringify(config));
    const chat = join(tmp, 'chat.jsonl');
    const line = JSON.stringify({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ],
    });
    writeFileSync(chat, Array.from({ length: 8 }, () => line).join('\n'));
    const r = cli(['train', '--model', plain, '--task', 'sft', '--dataset', chat, '--method', 'lora', '--out', join(tmp, 'chat-run')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/chat\.jsonl:\d+: a \{"messages": \[\.\.\.\]\} record, but the model's tokenizer has no chat template/);
    expect(r.stderr).toMatch(/fix: .*"prompt".*"completion"/);
  });

  it('--pack needs --task sft', () => {
    const r = cli(['train', '--model', model, '--task', 'lm', '--pack', '--dataset', data]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--pack packs instruction-tuning examples, not --task lm/);
  });
});
