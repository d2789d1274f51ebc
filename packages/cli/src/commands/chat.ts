import { createInterface } from 'node:readline';
import { DeltaTuneError } from '@deltatune/core';
import { generate, type ChatMessage } from '@deltatune/models';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { prepare } from '../context';
import { generationOptions, LM_FLAGS, padIdFor, REPLY_PROMPT, TextStream } from '../generation-flags';
import { openLmSession } from '../lm-session';
import { defineCommand } from './command';

const CHAT_FLAGS = {
  ...LM_FLAGS,
  system: flag({ type: 'text', help: 'a system message at the start of the conversation', placeholder: 'TEXT' }),
} as const;

export const chatCommand = defineCommand({
  name: 'chat',
  summary: 'a terminal conversation with a decoder LLM through its chat template',
  about: `deltatune chat --model M [--delta D]... [--system TEXT] [sampling flags]
  Each line you type is a user message; the reply streams as it is generated, through the model's
  chat template (tokenizer_config.json). /reset starts over, /exit (or end of input) leaves.
  Lines piped on stdin work the same, one message each.`,
  flags: CHAT_FLAGS,
  run: (flags) => chat(flags),
});

async function chat(flags: Flags<typeof CHAT_FLAGS>): Promise<void> {
  await prepare(flags);
  if (flags.value('json'))
    throw new DeltaTuneError('deltatune chat has no --json output', 'use deltatune generate --chat --json for one reply as JSON');
  const session = await openLmSession(flags, true);
  try {
    const { backbone, tokenizer, defaults } = session;
    if (!tokenizer!.applyChatTemplate)
      throw new DeltaTuneError(
        `${session.dir} has no chat template (chat_template in tokenizer_config.json)`,
        'use an instruct model, or deltatune generate --prompt for plain continuation',
      );
    const options = generationOptions(flags, defaults, tokenizer);
    const padId = padIdFor(backbone, tokenizer, defaults);
    const system = flags.value('system');
    const start: ChatMessage[] = system ? [{ role: 'system', content: system }] : [];
    let messages = [...start];
    const tty = !!process.stdin.isTTY;
    const lines = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
    const ask = () => tty && process.stdout.write('you> ');
    ask();
    for await (const raw of lines) {
      const line = raw.trim();
      if (line === '/exit') break;
      if (line === '/reset') {
        messages = [...start];
        process.stdout.write('(conversation cleared)\n');
        ask();
        continue;
      }
      if (!line) {
        ask();
        continue;
      }
      messages.push({ role: 'user', content: line });
      const prompt = fitPrompt(messages, start.length, (m) => tokenizerIds(m), backbone.maxPositions, options.maxNewTokens);
      process.stdout.write(tty ? 'assistant> ' : '');
      const stream = new TextStream(options.decode!, (t) => process.stdout.write(t), options.stopStrings);
      const [row] = await generate(backbone, [prompt.ids], { ...options, padId, onToken: (_r, id) => stream.push(id) });
      stream.end(row.text ?? '');
      process.stdout.write('\n');
      messages = [...prompt.kept, { role: 'assistant', content: (row.text ?? '').trim() }];
      ask();
    }
    lines.close();
  } finally {
    session.dispose();
  }

  function tokenizerIds(m: readonly ChatMessage[]): number[] {
    const t = session.tokenizer!;
    return t.encodeOne(t.applyChatTemplate!(m, REPLY_PROMPT), { addSpecialTokens: false }).ids;
  }
}

/** The conversation's prompt ids; the oldest turns (after the system message) are dropped until it and the reply fit the model. */
function fitPrompt(
  messages: ChatMessage[],
  keepFirst: number,
  ids: (m: readonly ChatMessage[]) => number[],
  maxPositions: number | undefined,
  maxNewTokens: number,
): { ids: number[]; kept: ChatMessage[] } {
  let kept = messages;
  for (;;) {
    const prompt = ids(kept);
    if (maxPositions === undefined || prompt.length + maxNewTokens <= maxPositions) return { ids: prompt, kept };
    if (kept.length - keepFirst <= 1)
      throw new DeltaTuneError(
        `the message takes ${prompt.length} tokens and the reply ${maxNewTokens}: more than the model's ${maxPositions} positions`,
        'send a shorter message, or lower --max-new-tokens',
      );
    kept = [...kept.slice(0, keepFirst), ...kept.slice(keepFirst + 2)];
  }
}
