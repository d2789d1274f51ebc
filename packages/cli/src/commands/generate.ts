import { DeltaTuneError } from '@deltatune/core';
import { generate, isSampling } from '@deltatune/models';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { output, prepare } from '../context';
import { generationOptions, LM_FLAGS, padIdFor, REPLY_PROMPT, TextStream } from '../generation-flags';
import { openLmSession } from '../lm-session';
import { defineCommand } from './command';

const GENERATE_FLAGS = {
  ...LM_FLAGS,
  prompt: flag({ type: 'text', help: 'a text to continue (several: one batch, left-padded)', placeholder: 'TEXT', repeatable: true }),
  'input-ids': flag({
    type: 'text',
    accepts: 'comma-separated token ids',
    help: 'a prompt as token ids, e.g. 5,17,42 (several: one batch)',
    placeholder: 'IDS',
    repeatable: true,
  }),
  chat: flag({ type: 'switch', help: "wrap each --prompt as a user message in the model's chat template" }),
} as const;

export const generateCommand = defineCommand({
  name: 'generate',
  summary: 'continue prompts with a decoder LLM (and its deltas): greedy or sampled',
  about: `deltatune generate --model M [--delta D]... (--prompt TEXT | --input-ids 5,17,42)... [--max-new-tokens N] [--ignore-eos] [--json]
  Greedy unless asked to sample (--sample, or --temperature/--top-k/--top-p). Tokens stream to
  stdout as they come (one prompt, no --json); --json prints each prompt's ids, new ids and text.
  Stops at the model's end-of-sequence ids (generation_config.json) or a --stop string.`,
  flags: GENERATE_FLAGS,
  run: (flags) => generateText(flags),
});

/** `--input-ids 5,17,42`: whole numbers, checked against the vocabulary before any work. */
function parseIds(text: string, vocab: number): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const ids = parts.map(Number);
  const bad = parts.findIndex((p, i) => p === '' || !Number.isInteger(ids[i]) || ids[i] < 0);
  if (bad >= 0)
    throw new DeltaTuneError(
      `--input-ids ${text}: "${parts[bad]}" is not a token id`,
      'give whole numbers >= 0 separated by commas, e.g. --input-ids 5,17,42',
    );
  const outside = ids.findIndex((id) => id >= vocab);
  if (outside >= 0)
    throw new DeltaTuneError(
      `--input-ids: id ${ids[outside]} (position ${outside}) is outside the model's vocabulary of ${vocab} (ids 0..${vocab - 1})`,
      `give ids below ${vocab}, or text with --prompt "..." (tokenized for you)`,
    );
  return ids;
}

async function generateText(flags: Flags<typeof GENERATE_FLAGS>): Promise<void> {
  const { backend } = await prepare(flags);
  const json = flags.value('json');
  const texts = flags.value('prompt');
  const idLists = flags.value('input-ids');
  if (texts.length && idLists.length)
    throw new DeltaTuneError(
      '--prompt and --input-ids both give prompts',
      'give text with --prompt or token ids with --input-ids, not both',
    );
  if (!texts.length && !idLists.length)
    throw new DeltaTuneError('deltatune generate needs --prompt TEXT or --input-ids IDS', 'e.g. --prompt "Once upon a time"');
  const session = await openLmSession(flags, texts.length > 0);
  try {
    const { backbone, tokenizer, defaults } = session;
    const chat = flags.value('chat');
    if (chat && !tokenizer?.applyChatTemplate)
      throw new DeltaTuneError(
        `${session.dir} has no chat template (tokenizer_config.json chat_template)`,
        'drop --chat to continue the text as it is',
      );
    const prompts = texts.length
      ? texts.map((t) =>
          chat
            ? tokenizer!.encodeOne(tokenizer!.applyChatTemplate!([{ role: 'user', content: t }], REPLY_PROMPT), {
                addSpecialTokens: false,
              }).ids
            : tokenizer!.encodeOne(t).ids,
        )
      : idLists.map((l) => parseIds(l, backbone.vocabSize!));
    const options = generationOptions(flags, defaults, tokenizer);
    const streaming = !json && prompts.length === 1 && !!options.decode;
    const stream = streaming ? new TextStream(options.decode!, (t) => process.stdout.write(t), options.stopStrings) : undefined;
    const started = Date.now();
    const rows = await generate(backbone, prompts, {
      ...options,
      padId: padIdFor(backbone, tokenizer, defaults),
      onToken: (_r, id) => stream?.push(id),
    });
    const seconds = (Date.now() - started) / 1000;
    const newTokens = rows.reduce((n, r) => n + r.newIds.length, 0);
    if (stream) {
      stream.end(rows[0].text ?? '');
      process.stdout.write('\n');
      process.stderr.write(
        `  ${newTokens} tokens in ${seconds.toFixed(2)} s (${(newTokens / seconds).toFixed(1)} tokens/s), stopped by ${rows[0].finish}\n`,
      );
      return;
    }
    output(
      json,
      {
        backend,
        model: flags.value('model'),
        deltas: session.deltas.map((d) => ({ name: d.name, method: d.method, merged: !!d.merged })),
        sampling: isSampling(options)
          ? { temperature: options.temperature, top_k: options.topK, top_p: options.topP, seed: options.seed }
          : 'greedy',
        seconds,
        rows: rows.map((r, i) => ({
          ...(texts.length ? { prompt: texts[i] } : {}),
          prompt_ids: r.promptIds,
          new_ids: r.newIds,
          ...(r.text !== undefined ? { text: r.text } : {}),
          finish: r.finish,
        })),
      },
      () => rows.map((r, i) => (r.text !== undefined ? `${texts[i] ?? ''}${r.text}` : r.newIds.join(','))).join('\n---\n'),
    );
  } finally {
    session.dispose();
  }
}
