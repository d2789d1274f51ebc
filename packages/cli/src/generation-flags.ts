import { DeltaTuneError, type Backbone, type Delta } from '@deltatune/core';
import type { GenerateOptions, GenerationDefaults, TextTokenizer } from '@deltatune/models';
import type { Flags } from './args';
import { flag } from './command-line/flag-schema';
import { COMMON_FLAGS } from './common-flags';

/** The flags `generate` and `chat` share: the model, its deltas, and how tokens are chosen. */
export const LM_FLAGS = {
  model: flag({
    type: 'text',
    accepts: 'a Hugging Face model folder or hub id (owner/name)',
    help: 'the decoder to run (Llama, Mistral, Qwen2, Qwen3, GPT-2)',
    placeholder: 'MODEL',
  }),
  delta: flag({
    type: 'text',
    accepts: 'a saved delta folder',
    help: 'a delta to attach (a run’s delta/ or a PEFT folder)',
    placeholder: 'DIR',
    repeatable: true,
  }),
  merge: flag({ type: 'switch', help: 'fold the deltas into the weights first (LoRA family, BitFit): same tokens, faster steps' }),
  'max-new-tokens': flag({
    type: 'nonNegativeInteger',
    help: 'new tokens per prompt at most',
    placeholder: 'N',
    defaultText: "generation_config's, else 64",
  }),
  'ignore-eos': flag({ type: 'switch', help: 'go on past the end-of-sequence ids (always max-new-tokens)' }),
  stop: flag({ type: 'text', help: 'a string that ends the continuation (cut before it)', placeholder: 'TEXT', repeatable: true }),
  sample: flag({
    type: 'switch',
    help: "sample with the model's generation_config.json settings (else greedy unless a setting below is given)",
  }),
  temperature: flag({ type: 'nonNegative', help: 'sample at this temperature (0: greedy)', placeholder: 'T' }),
  'top-k': flag({ type: 'nonNegativeInteger', help: 'sample among the K most likely tokens (0: all)', placeholder: 'K' }),
  'top-p': flag({ type: 'positive', help: 'sample among the most likely tokens reaching probability P (at most 1)', placeholder: 'P' }),
  'repetition-penalty': flag({
    type: 'positive',
    help: 'divide the scores of tokens already in the text (1: none; 1.1-1.3 is usual)',
    placeholder: 'R',
  }),
  seed: flag({ type: 'integer', help: 'seed of the sampling draws', placeholder: 'N', default: 0 }),
  'no-cache': flag({
    type: 'switch',
    help: 'recompute the whole text each token instead of using the key/value cache (slow; for comparison)',
  }),
  ...COMMON_FLAGS,
} as const;

export type LmFlags = Flags<typeof LM_FLAGS>;

/**
 * Generation options from the flags over the model's generation_config.json. Greedy unless asked
 * to sample: by --sample (the model's own settings), or by giving a sampling setting, which then
 * fills the others from generation_config.json as transformers merges them.
 */
export function generationOptions(
  flags: LmFlags,
  defaults: GenerationDefaults,
  tokenizer: TextTokenizer | undefined,
): Omit<GenerateOptions, 'padId'> {
  const given = (['temperature', 'top-k', 'top-p'] as const).some((f) => flags.given(f));
  const doSample = flags.value('sample') || given;
  const topP = flags.value('top-p') ?? defaults.topP;
  if (topP !== undefined && topP > 1) throw new DeltaTuneError(`--top-p must be at most 1, got ${topP}`, 'e.g. --top-p 0.9');
  const eosIds = flags.value('ignore-eos') ? [] : (defaults.eosIds ?? tokenizer?.eosIds ?? []);
  const stops = flags.value('stop');
  if (stops.length && !tokenizer?.decode)
    throw new DeltaTuneError(
      '--stop needs the model’s tokenizer to read the text, and this model folder has no tokenizer.json',
      'add tokenizer.json, or stop by length (--max-new-tokens)',
    );
  return {
    maxNewTokens: flags.value('max-new-tokens') ?? defaults.maxNewTokens ?? 64,
    doSample,
    temperature: flags.value('temperature') ?? defaults.temperature,
    topK: flags.value('top-k') ?? defaults.topK,
    topP,
    repetitionPenalty: flags.value('repetition-penalty') ?? defaults.repetitionPenalty,
    seed: flags.value('seed'),
    eosIds,
    stopStrings: stops,
    decode: tokenizer?.decode ? (ids) => tokenizer.decode!(ids, { skipSpecialTokens: true }) : undefined,
    useCache: !flags.value('no-cache'),
  };
}

/**
 * How a reply's prompt is rendered: the generation prompt, and Qwen3's thinking off, so the
 * prompt ends as `train --task sft` renders an assistant turn (an empty think block first).
 * Templates that have no such variable ignore it.
 */
export const REPLY_PROMPT = { addGenerationPrompt: true, variables: { enable_thinking: false } } as const;

/** Folds every delta in (`--merge`), refusing one that cannot be. */
export function mergeAll(deltas: readonly Delta[]): void {
  for (const d of deltas) {
    if (!d.merge)
      throw new DeltaTuneError(
        `delta "${d.name}" (${d.method}) cannot be merged`,
        'drop --merge; only LoRA-family and BitFit deltas fold into the weights',
      );
    d.merge();
  }
}

/** The id that fills the left of shorter prompts: the tokenizer's pad, else the first eos id, else 0. */
export function padIdFor(backbone: Backbone, tokenizer: TextTokenizer | undefined, defaults: GenerationDefaults): number {
  const candidates = [defaults.padId, tokenizer?.padId, defaults.eosIds?.[0], 0];
  return candidates.find((id): id is number => id !== undefined && id >= 0 && id < (backbone.vocabSize ?? Infinity)) ?? 0;
}

/**
 * Writes a row's text as its tokens come: the decoded text grows, and what was not written yet is
 * written. Held back: a partial character at the end (a multi-byte one spans tokens), and the last
 * characters a stop string could still begin in (so a stop string never shows).
 */
export class TextStream {
  private written = 0;
  private readonly ids: number[] = [];
  private readonly holdBack: number;
  constructor(
    private readonly decode: (ids: readonly number[]) => string,
    private readonly write: (text: string) => void,
    private readonly stopStrings: readonly string[] = [],
  ) {
    this.holdBack = Math.max(0, ...stopStrings.map((s) => s.length - 1));
  }

  push(id: number): void {
    this.ids.push(id);
    const text = this.decode(this.ids);
    if (text.endsWith('\uFFFD')) return;
    // A stop string the new token completed (possibly inside the token) ends what may be shown.
    const stops = this.stopStrings.map((s) => text.indexOf(s)).filter((i) => i >= 0);
    const upTo = stops.length ? Math.min(...stops) : text.length - this.holdBack;
    if (upTo > this.written) this.write(text.slice(this.written, upTo));
    this.written = Math.max(this.written, upTo);
  }

  /** The rest of the final text (cut before a stop string). */
  end(final: string): void {
    if (final.length > this.written) this.write(final.slice(this.written));
  }
}
