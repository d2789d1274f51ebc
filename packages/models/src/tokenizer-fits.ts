import { DeltaTuneError, type Backbone } from '@deltatune/core';
import type { TextTokenizer } from './tokenizer';

/**
 * Refuses a tokenizer that can produce ids past the model's embedding table (the tokenizer of
 * another model of the family, usually): otherwise the first rare token fails deep in a gather.
 * A table larger than the tokenizer is normal (Qwen pads vocab_size to 151936 for 151669 ids).
 */
export function checkTokenizerFits(
  tokenizer: Pick<TextTokenizer, 'vocabularySize'>,
  backbone: Pick<Backbone, 'vocabSize'>,
  /** The model folder, named in the error. */
  dir?: string,
): void {
  const ids = tokenizer.vocabularySize;
  const size = backbone.vocabSize;
  if (ids === undefined || size === undefined || ids <= size) return;
  throw new DeltaTuneError(
    `${dir === undefined ? '' : `${dir}/`}tokenizer.json has ids up to ${ids - 1} but the model's vocab_size is ${size}`,
    "use the tokenizer of the model's own repository",
  );
}
