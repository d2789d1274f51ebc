import type { Backbone } from '@deltatune/core';
import { generate, type TextTokenizer } from '@deltatune/models';
import type { SftExample } from '../datasets/types';
import { sftPrompt } from './tokenize';

/** One test example continued greedily: what the model was asked, what it should say, what it said. */
export interface SftSample {
  /** The prompt's text (a conversation: the rendered turns before the last assistant reply). */
  readonly prompt: string;
  readonly reference: string;
  readonly generation: string;
  /** Why generation stopped: an eos id, or `maxNewTokens`. */
  readonly finish: string;
}

export interface SftSampleOptions {
  /** How many examples (the first that fit), default 4. */
  readonly count?: number;
  /** Default 32. */
  readonly maxNewTokens?: number;
  /** Prompts longer than this are skipped (truncation would have dropped them from the run). */
  readonly maxLength: number;
}

/**
 * Greedy continuations of a few held-out examples, through the backbone and whatever deltas are
 * attached, prompted exactly as training saw them (`sftPrompt`), stopping at the tokenizer's eos
 * ids. Text needs the tokenizer's `decode`; without it the ids are joined.
 */
export async function sftSamples(
  backbone: Backbone,
  tokenizer: TextTokenizer,
  examples: readonly SftExample[],
  o: SftSampleOptions,
): Promise<SftSample[]> {
  const text = (ids: readonly number[], skipSpecialTokens = true) =>
    tokenizer.decode ? tokenizer.decode(ids, { skipSpecialTokens }) : ids.join(' ');
  const chosen = examples
    .map((e) => ({ e, ...sftPrompt(tokenizer, e) }))
    .filter((p) => p.promptIds.length > 0 && p.promptIds.length < o.maxLength)
    .slice(0, o.count ?? 4);
  if (chosen.length === 0) return [];
  const rows = await generate(
    backbone,
    chosen.map((c) => c.promptIds),
    { maxNewTokens: o.maxNewTokens ?? 32, eosIds: tokenizer.eosIds, padId: tokenizer.padId },
  );
  return chosen.map((c, i) => ({
    prompt: 'prompt' in c.e ? c.e.prompt : text(c.promptIds, false),
    reference: c.reference,
    generation: text(rows[i].newIds),
    finish: rows[i].finish,
  }));
}
