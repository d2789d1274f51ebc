import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeltaTuneError } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { checkSftData, train } from '@deltatune/train';
import { loadDataset, loadSftFile } from '@deltatune/train/node';
import { tinyBert } from './fixtures/tiny-run';

const dir = mkdtempSync(join(tmpdir(), 'sft-file-'));
const good = Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `q${i} `, completion: `a${i}` }));
/** A file of good lines with `bad` as line 4. */
function withBadLine(name: string, bad: string): string {
  const path = join(dir, name);
  writeFileSync(path, [...good.slice(0, 3), bad, ...good.slice(3)].join('\n') + '\n');
  return path;
}

/** The DeltaTuneError loading throws: one line naming file:line, and a fix. */
function failure(run: () => unknown): { message: string; fix: string } {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(DeltaTuneError);
    const message = (e as DeltaTuneError).message.split('\n  fix: ')[0];
    expect(message).not.toContain('\n');
    expect((e as DeltaTuneError).fix).toBeTruthy();
    return { message, fix: (e as DeltaTuneError).fix! };
  }
  throw new Error('did not fail');
}

describe('SFT .jsonl files', () => {
  it('prompt/completion and messages lines load, split like every file dataset', () => {
    const path = join(dir, 'mixed.jsonl');
    const chat = JSON.stringify({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ],
      id: 7,
    });
    writeFileSync(path, [...good, chat, '', ...good].join('\n'));
    const d = loadDataset(path, undefined, { task: 'sft' });
    expect(d.train.length + d.validation.length + d.test.length).toBe(17);
    expect(d.test.length).toBe(3);
    // Deterministic: the same file splits the same way.
    expect(loadSftFile(path).test).toEqual(d.test);
    const conversation = [...d.train, ...d.validation, ...d.test].find((e) => 'messages' in e)!;
    expect(conversation.source).toBe(`${path}:9`);
  });

  it.each([
    [
      'neither',
      '{"question": "q", "answer": "a"}',
      /:4: the record has neither "prompt"\/"completion" nor "messages" \(has: question, answer\)/,
    ],
    ['no-completion', '{"prompt": "q"}', /:4: the record has no "completion"/],
    ['empty-completion', '{"prompt": "q", "completion": "  "}', /:4: "completion" is empty/],
    ['number', '{"prompt": 3, "completion": "a"}', /:4: "prompt" is a number \(3\), not a string/],
    ['both', '{"prompt": "q", "completion": "a", "messages": []}', /:4: the record has both "messages" and "prompt"\/"completion"/],
    ['no-assistant', '{"messages": [{"role": "user", "content": "hi"}]}', /:4: the conversation has no assistant turn \(roles: user\)/],
    [
      'empty-assistant',
      '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}',
      /:4: assistant message 2 is empty/,
    ],
    ['no-role', '{"messages": [{"content": "hi"}, {"role": "assistant", "content": "x"}]}', /:4: message 1 is without a "role" string/],
    [
      'parts',
      '{"messages": [{"role": "assistant", "content": [{"type": "text"}]}]}',
      /:4: message 1 \(assistant\) has an array as "content", not text/,
    ],
    ['not-json', '{"prompt": "q", ', /:4 is not valid JSON/],
  ])('a bad line (%s) fails naming file:line, what is wrong, and a fix', (name, line, message) => {
    const path = withBadLine(`${name}.jsonl`, line);
    const f = failure(() => loadSftFile(path));
    expect(f.message).toContain(path);
    expect(f.message).toMatch(message);
  });

  it('plain text lines say that --task lm trains those', () => {
    const f = failure(() => loadSftFile(withBadLine('text.jsonl', '{"text": "hello", "label": "x"}')));
    expect(f.fix).toMatch(/--task lm/);
  });

  it('a built-in dataset or a CSV is refused for sft', () => {
    expect(failure(() => loadDataset('spam', undefined, { task: 'sft' })).message).toMatch(/labelled text/);
    const csv = join(dir, 'data.csv');
    writeFileSync(csv, 'prompt,completion\nq,a\n');
    expect(failure(() => loadDataset(csv, undefined, { task: 'sft' })).message).toMatch(/reads a \.jsonl file/);
  });

  it('messages with a tokenizer that has no chat template fail before training, naming the line', async () => {
    const path = join(dir, 'chat.jsonl');
    const chat = JSON.stringify({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ],
    });
    writeFileSync(path, Array.from({ length: 8 }, () => chat).join('\n'));
    const dataset = loadSftFile(path);
    const plain: TextTokenizer = { padId: 0, defaultMaxLength: 16, encodeOne: (t) => ({ ids: [...t].map((c) => c.charCodeAt(0) % 60) }) };
    const f = failure(() => checkSftData(dataset, plain));
    expect(f.message).toMatch(
      new RegExp(`${path}:\\d+: a \\{"messages": \\[\\.\\.\\.\\]\\} record, but the model's tokenizer has no chat template`),
    );
    expect(f.fix).toMatch(/prompt.*completion/);
    const model = tinyBert();
    await expect(
      train({
        backbone: model,
        tokenizer: plain,
        dataset,
        task: 'sft',
        learningRate: 1e-3,
        batchSize: 2,
        steps: 1,
        maxLength: 16,
        seed: 0,
      }),
    ).rejects.toThrow(/has no chat template/);
    model.dispose();
  });
});
