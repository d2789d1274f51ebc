import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HuggingFaceTokenizer, type TextTokenizer } from '@deltatune/models';
import { packSplit, sftPrompt, sftRow, tokenizeSftSplit, type SftExample } from '@deltatune/train';
import { QWEN3_TOKENIZER } from './fixtures/tiny-qwen3';

const json = (f: string) => JSON.parse(readFileSync(join(QWEN3_TOKENIZER, f), 'utf8'));
/** The real Qwen3 tokenizer and chat template; eos `<|im_end|>` (its tokenizer_config's eos_token). */
const qwen3 = new HuggingFaceTokenizer(json('tokenizer.json'), json('tokenizer_config.json'), 4096, 'qwen3 tokenizer.json');
const IM_END = 151645;

/** The ids the mask selects, decoded run by run (one run per trained span). */
function maskedRuns(tokenizer: TextTokenizer, ids: readonly number[], mask: readonly number[]): string[] {
  const runs: number[][] = [];
  mask.forEach((m, i) => {
    if (m && (i === 0 || !mask[i - 1])) runs.push([]);
    if (m) runs[runs.length - 1].push(ids[i]);
  });
  return runs.map((r) => tokenizer.decode!(r));
}

describe('SFT tokenization with the real Qwen3 tokenizer', () => {
  it('messages: the mask covers exactly each assistant turn and its <|im_end|>', () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Name a prime.' },
      { role: 'assistant', content: 'Seven.' },
      { role: 'user', content: 'And an even one?' },
      // "think" and "im" also occur in the template's own markup: the span must be the content's.
      { role: 'assistant', content: 'Two, I think.\nim_end' },
    ];
    const row = sftRow(qwen3, { messages });
    expect(row.mask).toHaveLength(row.ids.length);
    expect(maskedRuns(qwen3, row.ids, row.mask)).toEqual(['Seven.<|im_end|>', 'Two, I think.\nim_end<|im_end|>']);
    // The ids are the rendered conversation's, nothing added or lost between the segments.
    const rendered = qwen3.applyChatTemplate!(messages);
    expect(qwen3.decode!(row.ids)).toBe(rendered);
    expect(row.ids).toEqual(qwen3.encodeOne(rendered, { addSpecialTokens: false }).ids);
    // Qwen3 puts an empty <think> block before the last turn: context, not a target.
    expect(rendered).toContain('<|im_start|>assistant\n<think>\n\n</think>\n\nTwo, I think.');
  });

  it('messages: the sample prompt is everything before the last assistant content, as trained', () => {
    const e: SftExample = {
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
      ],
    };
    const { promptIds, reference } = sftPrompt(qwen3, e);
    expect(reference).toBe('Hello!');
    expect(qwen3.decode!(promptIds)).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it('prompt/completion is plain text (no chat template), the loss on the completion and the eos id', () => {
    const row = sftRow(qwen3, { prompt: 'Reverse: a b c\n', completion: 'c b a' });
    expect(qwen3.decode!(row.ids)).toBe('Reverse: a b c\nc b a<|im_end|>');
    expect(maskedRuns(qwen3, row.ids, row.mask)).toEqual(['c b a<|im_end|>']);
    expect(row.ids.at(-1)).toBe(IM_END);
    // A completion that already ends with the eos token gets no second one.
    const ended = sftRow(qwen3, { prompt: 'Q: ', completion: 'A<|im_end|>' });
    expect(ended.ids.filter((id) => id === IM_END)).toHaveLength(1);
  });

  it('truncation keeps ids and mask aligned; an example cut before its completion is dropped and counted', () => {
    const long = { prompt: 'word '.repeat(30), completion: 'the answer' };
    const fits = { prompt: 'Q: two plus two?\n', completion: 'four, as everyone knows' };
    const full = sftRow(qwen3, fits);
    const maxLength = full.mask.indexOf(1) + 3; // the prompt and three completion tokens
    const split = tokenizeSftSplit(qwen3, [long, fits, long], maxLength);
    expect(split.dropped).toBe(2);
    expect(split.kept).toEqual([1]);
    expect(split.ids[0]).toEqual(full.ids.slice(0, maxLength));
    expect(split.lossMask[0]).toEqual(full.mask.slice(0, maxLength));
    expect(split.lossMask[0].reduce((a, b) => a + b, 0)).toBe(3);
    // The masked ids are the completion's first three, not shifted by the cut.
    expect(qwen3.decode!(split.ids[0].filter((_, i) => split.lossMask[0][i]))).toBe(
      qwen3.decode!(full.ids.slice(maxLength - 3, maxLength)),
    );
    expect(qwen3.decode!(full.ids.slice(maxLength - 3, maxLength)).startsWith('four')).toBe(true);
  });

  it('packing: rows within maxLength, every target kept, each example starting as context', () => {
    const examples = Array.from({ length: 9 }, (_, i) => ({ prompt: `Count to ${i}:`, completion: ' ' + 'one '.repeat(i + 1) }));
    const split = tokenizeSftSplit(qwen3, examples, 32);
    const packed = packSplit(split, 32);
    expect(packed.ids.length).toBeLessThan(split.ids.length);
    for (const [r, ids] of packed.ids.entries()) {
      expect(ids.length).toBeLessThanOrEqual(32);
      expect(packed.lossMask![r]).toHaveLength(ids.length);
    }
    const sum = (rows: readonly (readonly number[])[]) => rows.flat().reduce((a, b) => a + b, 0);
    // Each example's first token is a prompt token (mask 0), so packing loses no target.
    expect(sum(packed.lossMask!)).toBe(sum(split.lossMask));
    expect(packed.ids.flat().sort()).toEqual(split.ids.flat().sort());
  });
});
