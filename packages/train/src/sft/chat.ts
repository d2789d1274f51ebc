import { DeltaTuneError } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import type { SftMessage } from '../datasets/types';
import type { Segment } from './segments';

/** Stands in for one assistant turn's content: where the template puts it is where the content is. */
const PLACEHOLDER = 'DELTATUNE_SFT_CONTENT_7F3C';

const NO_TEMPLATE_FIX =
  'write the data as {"prompt": "...", "completion": "..."} records (plain text, no template), ' +
  'or use a model folder whose tokenizer_config.json has a chat_template';

export function noChatTemplate(where: string): DeltaTuneError {
  return new DeltaTuneError(`${where}: a {"messages": [...]} record, but the model's tokenizer has no chat template`, NO_TEMPLATE_FIX);
}

/**
 * A conversation as segments of its chat-template rendering: the assistant turns' content is the
 * target, each followed by its end token (`<|im_end|>`); everything else (system and user turns,
 * role headers, the template's other text) is context.
 *
 * Each assistant turn is located by rendering the whole conversation again with that turn's
 * content replaced by a placeholder: the text before and after the placeholder must be the real
 * rendering's, and what lies between is the content as the template renders it. Rendering
 * prefixes alone (`template(messages[:i], add_generation_prompt)` vs `template(messages[:i+1])`)
 * is not enough: Qwen3's template renders an assistant turn with an empty `<think>` block when it
 * is the last, and without it inside a longer conversation. The turn's closing (`<|im_end|>\n`)
 * comes from rendering the conversation up to that turn, placeholder last.
 */
export function chatSegments(tokenizer: TextTokenizer, messages: readonly SftMessage[], where: string): Segment[] {
  if (!tokenizer.applyChatTemplate) throw noChatTemplate(where);
  const render = (msgs: readonly SftMessage[]): string => {
    try {
      return tokenizer.applyChatTemplate!(msgs, { addGenerationPrompt: false });
    } catch (e) {
      throw new DeltaTuneError(
        `${where}: the chat template cannot render this conversation (${(e as Error).message.split('\n')[0]})`,
        'check the roles and their order (many templates want user and assistant turns alternating, a system turn only first)',
      );
    }
  };
  const full = render(messages);
  const segments: Segment[] = [];
  let at = 0;
  let turn = 0;
  let closeNext = false;
  for (const [i, m] of messages.entries()) {
    if (m.role !== 'assistant') continue;
    turn++;
    const withPlaceholder = (msgs: readonly SftMessage[]) => render(msgs.map((x, j) => (j === i ? { ...x, content: PLACEHOLDER } : x)));
    const marked = withPlaceholder(messages);
    const p = marked.indexOf(PLACEHOLDER);
    const before = marked.slice(0, p);
    const after = marked.slice(p + PLACEHOLDER.length);
    const end = full.length - after.length;
    // The content as rendered: Llama 3's template trims it, for one. A template that rewrites it
    // (Qwen3 moves a `<think>` block out of it) leaves text around the placeholder that the real
    // rendering does not have.
    const content = full.slice(p, end);
    if (p < at || marked.indexOf(PLACEHOLDER, p + 1) >= 0 || !full.startsWith(before) || !full.endsWith(after) || end <= p) {
      throw new DeltaTuneError(
        `${where}: the chat template does not render assistant turn ${turn} (message ${i + 1}) as it is written, ` +
          'so the tokens to train on cannot be found',
        'write the turn as plain text (no <think> block or other markup the template rewrites), or use prompt/completion records',
      );
    }
    // The turn's own closing, as the template ends a conversation with it; inside a longer one the
    // text after the content starts with it, else (a template that closes inner turns otherwise)
    // the first token after the content is taken for the end token.
    const upTo = withPlaceholder(messages.slice(0, i + 1));
    const closing = upTo.slice(upTo.lastIndexOf(PLACEHOLDER) + PLACEHOLDER.length);
    segments.push({ text: full.slice(at, p), kind: closeNext ? 'first' : 'context' }, { text: content, kind: 'target' });
    at = end;
    closeNext = !(closing && full.startsWith(closing, end));
    if (!closeNext) {
      segments.push({ text: closing, kind: 'closing' });
      at = end + closing.length;
    }
  }
  segments.push({ text: full.slice(at), kind: closeNext ? 'first' : 'context' });
  return segments;
}
