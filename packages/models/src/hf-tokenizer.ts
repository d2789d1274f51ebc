import { Tokenizer } from '@huggingface/tokenizers';
import type { TextTokenizer } from './tokenizer';

/** A Hugging Face `tokenizer.json` (WordPiece, BPE, ...) through @huggingface/tokenizers. */
export class HuggingFaceTokenizer implements TextTokenizer {
  readonly padId: number;
  readonly defaultMaxLength: number;
  private readonly tokenizer: Tokenizer;

  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown> = {}, modelMaxLength = 512) {
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    const padToken = (tokenizerConfig.pad_token as string | undefined) ?? '[PAD]';
    this.padId = this.tokenizer.token_to_id(padToken) ?? 0;
    const configured = tokenizerConfig.model_max_length as number | undefined;
    this.defaultMaxLength = configured && configured < 1e6 ? configured : modelMaxLength;
  }

  encodeOne(text: string): { ids: number[]; typeIds?: number[] } {
    const e = this.tokenizer.encode(text, { return_token_type_ids: true });
    return { ids: e.ids.map(Number), typeIds: e.token_type_ids };
  }
}
