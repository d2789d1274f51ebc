import type { TextTokenizer } from '@deltatune/models';
import type { TokenizedSplit } from '../batches';
import type { SftExample } from '../datasets/types';
import { chatSegments } from './chat';
import { encodeSegments, type SftRow } from './segments';

/** A split of instruction-tuning examples: ids and loss masks truncated to `maxLength`. */
export interface SftSplit extends TokenizedSplit {
  readonly lossMask: readonly number[][];
  /** Examples left out because truncation cut away every token the loss would count. */
  readonly dropped: number;
  /** Which examples the rows are (indices into the split's examples). */
  readonly kept: readonly number[];
}

const where = (e: SftExample, fallback: string) => e.source ?? fallback;

/**
 * One example's ids and loss mask, untruncated.
 *
 * Prompt/completion is plain text, as TRL's SFTTrainer takes a non-conversational dataset: the
 * chat template is not applied even when the tokenizer has one (a template would add a system
 * prompt and role headers the data did not ask for; write `messages` records to get it). The
 * prompt is encoded with the tokenizer's special tokens (a BOS), the completion without, and an
 * eos id (`eosIds[0]`) ends the completion unless it already does, so the model learns to stop.
 * Messages are rendered with the chat template and the loss covers the assistant turns' content
 * and their end tokens (`chatSegments`).
 */
export function sftRow(tokenizer: TextTokenizer, e: SftExample, fallbackWhere = 'an example'): SftRow {
  if ('messages' in e) return encodeSegments(tokenizer, chatSegments(tokenizer, e.messages, where(e, fallbackWhere)));
  const prompt = tokenizer.encodeOne(e.prompt).ids;
  const completion = tokenizer.encodeOne(e.completion, { addSpecialTokens: false }).ids;
  const eos = tokenizer.eosIds ?? [];
  if (eos.length && !eos.includes(completion[completion.length - 1])) completion.push(eos[0]);
  return { ids: [...prompt, ...completion], mask: [...prompt.map(() => 0), ...completion.map(() => 1)] };
}

/** Targets the loss counts in a (truncated) row: masked tokens after the first, which nothing predicts. */
function targets(mask: readonly number[]): number {
  let n = 0;
  for (let t = 1; t < mask.length; t++) n += mask[t];
  return n;
}

/**
 * Tokenizes a split for instruction tuning. Rows are cut at `maxLength` on the right (TRL's
 * default), ids and mask together, so the mask stays aligned; an example whose targets are all
 * cut away (a prompt as long as `maxLength`) is dropped and counted, not trained on zero tokens.
 */
export function tokenizeSftSplit(tokenizer: TextTokenizer, examples: readonly SftExample[], maxLength: number, name = 'split'): SftSplit {
  const ids: number[][] = [];
  const lossMask: number[][] = [];
  const kept: number[] = [];
  examples.forEach((e, i) => {
    const row = sftRow(tokenizer, e, `${name} example ${i + 1}`);
    const mask = row.mask.slice(0, maxLength);
    if (targets(mask) === 0) return;
    ids.push(row.ids.slice(0, maxLength));
    lossMask.push(mask);
    kept.push(i);
  });
  return { ids, lossMask, labels: new Int32Array(ids.length), dropped: examples.length - ids.length, kept };
}

/**
 * What generation continues for a sample: the ids before the last run of targets (the prompt; for
 * a conversation, everything before the last assistant turn's content, exactly as it was trained),
 * and the text the model should give there.
 */
export function sftPrompt(tokenizer: TextTokenizer, e: SftExample): { promptIds: number[]; reference: string } {
  const row = sftRow(tokenizer, e);
  let start = row.mask.lastIndexOf(1);
  while (start > 0 && row.mask[start - 1] === 1) start--;
  const reference = 'messages' in e ? e.messages.filter((m) => m.role === 'assistant').at(-1)!.content : e.completion;
  return { promptIds: row.ids.slice(0, Math.max(start, 0)), reference };
}
