import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { DeltaTuneError } from '@deltatune/core';
import type { GenerationDefaults } from './generation/options';
import type { ChatMessage, TextTokenizer } from './tokenizer';

/** The special tokens transformers passes to a chat template (its `special_tokens_map`). */
const SPECIAL_TOKENS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

export interface HuggingFaceTokenizerOptions {
  /** generation_config.json (see `generationDefaults`): its eos ids win over the tokenizer's, its pad id is a fallback. */
  readonly generation?: GenerationDefaults;
  /** A chat template that replaces tokenizer_config.json's: `chat_template.jinja`, as transformers >= 4.43 saves it. */
  readonly chatTemplate?: string;
  /** Where the chat template comes from, for its errors (default: tokenizer_config.json). */
  readonly chatTemplateSource?: string;
}

export interface ChatTemplateOptions {
  /** End with the opening of an assistant turn, for generation (transformers' default: false). */
  readonly addGenerationPrompt?: boolean;
  /** More template variables, as transformers' `**kwargs` (e.g. Qwen3's `enable_thinking: false`). */
  readonly variables?: Readonly<Record<string, unknown>>;
}

/** Older configs write a special token as an AddedToken object (`{"__type": "AddedToken", "content": ...}`). */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** tokenizer_config.json with its special tokens as plain strings, the form @huggingface/tokenizers and templates read. */
function plainConfig(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const key of SPECIAL_TOKENS) if (config[key] !== undefined && config[key] !== null) out[key] = tokenText(config[key]);
  if (Array.isArray(config.additional_special_tokens)) out.additional_special_tokens = config.additional_special_tokens.map(tokenText);
  return out;
}

/** `chat_template` is a string, or (several templates) `[{name, template}]` / `{name: template}`; transformers uses "default". */
function pickTemplate(raw: unknown, source: string): string {
  if (typeof raw === 'string') return raw;
  const named: Array<[unknown, unknown]> = Array.isArray(raw)
    ? raw.map((t: { name?: unknown; template?: unknown } | null) => [t?.name, t?.template])
    : raw && typeof raw === 'object'
      ? Object.entries(raw)
      : [];
  const found = named.find(([name]) => name === 'default');
  if (found && typeof found[1] === 'string') return found[1];
  throw new DeltaTuneError(
    `${source}: chat_template has no template named "default" (it has: ${named.map(([n]) => JSON.stringify(n)).join(', ') || 'none'})`,
    'name the chat template to use "default", or save it as chat_template.jinja next to tokenizer_config.json',
  );
}

function firstLine(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).split('\n')[0];
}

/** A Hugging Face `tokenizer.json` (WordPiece, BPE, ...) through @huggingface/tokenizers. */
export class HuggingFaceTokenizer implements TextTokenizer {
  readonly padId: number;
  readonly defaultMaxLength: number;
  readonly eosIds?: readonly number[];
  readonly vocabularySize: number;
  /** Set only when the model has a chat template (tokenizer_config.json's `chat_template` or chat_template.jinja). */
  readonly applyChatTemplate?: (messages: readonly ChatMessage[], options?: ChatTemplateOptions) => string;
  private readonly tokenizer: Tokenizer;
  private readonly source: string;

  constructor(
    tokenizerJson: object,
    tokenizerConfig: Record<string, unknown> = {},
    modelMaxLength = 512,
    source = 'tokenizer.json',
    options: HuggingFaceTokenizerOptions = {},
  ) {
    const config = plainConfig(tokenizerConfig);
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (e) {
      throw new DeltaTuneError(
        `${source} is not a tokenizer @huggingface/tokenizers can read (${firstLine(e)})`,
        "use the tokenizer.json of the model's repository",
      );
    }
    this.source = source;
    // Added tokens (chat markers, <think>...) sit past the model's vocab, sometimes with gaps.
    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) if (id > maxId) maxId = id;
    for (const id of this.tokenizer.get_added_tokens_decoder().keys()) if (id > maxId) maxId = id;
    this.vocabularySize = maxId + 1;

    const idOf = (token: unknown) => (typeof token === 'string' ? this.tokenizer.token_to_id(token) : undefined);
    // generation_config.json first: instruct models end on several ids (Qwen: <|im_end|> and <|endoftext|>).
    const eos = idOf(config.eos_token);
    this.eosIds = options.generation?.eosIds ?? (eos === undefined ? undefined : [eos]);
    // '[PAD]' keeps BERT folders without a tokenizer_config.json working; eos is what decoders
    // without a pad token (GPT-2, Llama) are padded with; padding is masked out either way. An id
    // from generation_config.json that this tokenizer lacks (a test model's config copied from the
    // full-size one) is skipped: padded batches still gather its embedding row.
    const ours = (id: number | undefined) => (id !== undefined && id < this.vocabularySize ? id : undefined);
    this.padId = idOf(config.pad_token) ?? ours(options.generation?.padId) ?? idOf('[PAD]') ?? ours(this.eosIds?.[0]) ?? 0;
    const configured = config.model_max_length as number | undefined;
    this.defaultMaxLength = configured && configured < 1e6 ? configured : modelMaxLength;

    const rawTemplate = options.chatTemplate ?? config.chat_template;
    if (rawTemplate !== undefined && rawTemplate !== null) {
      const templateSource =
        options.chatTemplate !== undefined
          ? (options.chatTemplateSource ?? 'chat_template.jinja')
          : (options.chatTemplateSource ?? 'tokenizer_config.json');
      const special: Record<string, unknown> = {};
      for (const key of SPECIAL_TOKENS) if (typeof config[key] === 'string') special[key] = config[key];
      if (Array.isArray(config.additional_special_tokens)) special.additional_special_tokens = config.additional_special_tokens;
      let compiled: Template | undefined;
      // Parsed on first use: a model whose template this Jinja cannot read still trains on plain text.
      this.applyChatTemplate = (messages, o = {}) => {
        try {
          compiled ??= new Template(pickTemplate(rawTemplate, templateSource));
        } catch (e) {
          if (e instanceof DeltaTuneError) throw e;
          throw new DeltaTuneError(
            `the chat template of ${templateSource} is not valid Jinja (${firstLine(e)})`,
            "fix its syntax, or use the chat template of the model's own repository",
          );
        }
        try {
          // What transformers' apply_chat_template passes (tools and documents None when not given).
          return compiled.render({
            ...special,
            tools: null,
            documents: null,
            ...o.variables,
            messages: messages.map((m) => ({ ...m })),
            add_generation_prompt: o.addGenerationPrompt ?? false,
          });
        } catch (e) {
          // Mostly the template's own raise_exception("Conversation roles must alternate ..."),
          // which says what it wants; @huggingface/jinja gives no way to tell it from a runtime error.
          throw new DeltaTuneError(
            `the chat template of ${templateSource} fails on this conversation: ${firstLine(e)}`,
            'give the messages the roles and order the template expects (e.g. one system turn first, then user and assistant alternating), or fix the template',
          );
        }
      };
    }
  }

  encodeOne(text: string, options: { readonly addSpecialTokens?: boolean } = {}): { ids: number[]; typeIds?: number[] } {
    const e = this.tokenizer.encode(text, { return_token_type_ids: true, add_special_tokens: options.addSpecialTokens ?? true });
    // A tokenizer.json without an unknown token leaves out-of-vocabulary pieces without an id.
    const missing = e.ids.findIndex((id) => id === undefined || id === null);
    if (missing >= 0) {
      throw new DeltaTuneError(
        `${this.source} has no id for the token "${e.tokens[missing]}" (and no unknown token)`,
        'use a tokenizer.json that covers the text, with an unk_token its model knows',
      );
    }
    return { ids: e.ids.map(Number), typeIds: e.token_type_ids };
  }

  decode(ids: readonly number[], options: { readonly skipSpecialTokens?: boolean } = {}): string {
    // Ids without a token (a padded vocab_size's extra rows) are dropped, as the Rust tokenizers do;
    // @huggingface/tokenizers would crash on them, and throws on an empty list.
    const known = ids.filter((id) => this.tokenizer.id_to_token(id) !== undefined);
    if (known.length === 0) return '';
    return this.tokenizer.decode(known, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }
}
