import { Tokenizer } from '@huggingface/tokenizers';
import { DeltaTuneError } from '@deltatune/core';
import type { TextTokenizer } from './tokenizer';

/** A Hugging Face `tokenizer.json` (WordPiece, BPE, ...) through @huggingface/tokenizers. */
export class HuggingFaceTokenizer implements TextTokenizer {
  readonly padId: number;
  readonly defaultMaxLength: number;
  private readonly tokenizer: Tokenizer;
  private readonly source: string;

  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown> = {}, modelMaxLength = 512, source = 'tokenizer.json') {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new DeltaTuneError(
        `${source} is not a tokenizer @huggingface/tokenizers can read (${(e as Error).message.split('\n')[0]})`,
        "use the tokenizer.json of the model's repository",
      );
    }
    this.source = source;
    const padToken = (tokenizerConfig.pad_token as string | undefined) ?? '[PAD]';
    this.padId = this.tokenizer.token_to_id(padToken) ?? 0;
    const configured = tokenizerConfig.model_max_length as number | undefined;
    this.defaultMaxLength = configured && configured < 1e6 ? configured : modelMaxLength;
  }

  encodeOne(text: string): { ids: number[]; typeIds?: number[] } {
    const e = this.tokenizer.encode(text, { return_token_type_ids: true });
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
}
