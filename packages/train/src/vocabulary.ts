import { DeltaTuneError, type Backbone } from '@deltatune/core';
import type { TokenizedSplit } from './batches';

/** A tokenizer that does not match the model gives ids past its embedding table: tfjs's gather then fails obscurely. */
export function checkVocabulary(backbone: Backbone, splits: readonly TokenizedSplit[]): void {
  const size = backbone.vocabSize;
  if (size === undefined) return;
  let max = -1;
  for (const split of splits) for (const row of split.ids) for (const id of row) if (id > max) max = id;
  if (max >= size) {
    throw new DeltaTuneError(
      `the tokenizer produced token id ${max}, but this ${backbone.architecture} model's vocabulary has ${size} entries`,
      "use the tokenizer that came with the model (the model folder's tokenizer.json / vocab.txt)",
    );
  }
}
