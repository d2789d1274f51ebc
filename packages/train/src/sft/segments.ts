import type { TextTokenizer } from '@deltatune/models';

/**
 * A piece of an example's text and what the loss makes of its tokens: `context` none, `target`
 * all, `closing` (what a chat template puts after an assistant turn, `<|im_end|>\n`) its end
 * token only: up to the first eos id in it, else its first token (the end-of-turn marker);
 * `first` its first token only (the text after a turn whose closing could not be told apart).
 */
export interface Segment {
  readonly text: string;
  readonly kind: 'context' | 'target' | 'closing' | 'first';
}

/** An example as the model reads it: ids, and per id 1 where the loss counts it. */
export interface SftRow {
  readonly ids: number[];
  readonly mask: number[];
}

/**
 * Encodes each segment on its own (no special tokens: a rendered chat template holds them) and
 * concatenates. Encoding the pieces apart makes the mask exact by construction, where matching
 * offsets in one encoding of the whole text would need offsets the tokenizer interface lacks; at
 * the boundaries a template puts around a turn (a newline, a special token) the ids are those of
 * the whole text, and it is how generation sees it: the prompt encoded alone, then new ids.
 */
export function encodeSegments(tokenizer: TextTokenizer, segments: readonly Segment[]): SftRow {
  const eos = new Set(tokenizer.eosIds ?? []);
  const ids: number[] = [];
  const mask: number[] = [];
  for (const s of segments) {
    if (!s.text) continue;
    const piece = tokenizer.encodeOne(s.text, { addSpecialTokens: false }).ids;
    const end = s.kind === 'closing' ? piece.findIndex((id) => eos.has(id)) : -1;
    const targets = s.kind === 'target' ? piece.length : s.kind === 'closing' ? (end >= 0 ? end + 1 : 1) : s.kind === 'first' ? 1 : 0;
    piece.forEach((id, i) => {
      ids.push(id);
      mask.push(i < targets ? 1 : 0);
    });
  }
  return { ids, mask };
}
