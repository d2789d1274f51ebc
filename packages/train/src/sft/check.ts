import { DeltaTuneError } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { isSftExample, type Dataset, type SftDataset } from '../datasets/types';
import { noChatTemplate } from './chat';

/**
 * What instruction tuning needs of its data and tokenizer, checked before any work: every example
 * prompt/completion or messages; a chat template for messages (one failing conversation deep in
 * the run would waste what came before). The CLI calls it before claiming the output folder.
 */
export function checkSftData(dataset: Dataset<unknown>, tokenizer: TextTokenizer): asserts dataset is SftDataset {
  for (const split of ['train', 'validation', 'test'] as const) {
    for (const [i, e] of dataset[split].entries()) {
      if (!isSftExample(e))
        throw new DeltaTuneError(
          `dataset ${dataset.name}: ${split} example ${i + 1} is neither {prompt, completion} nor {messages}, which task "sft" trains on`,
          'load the data as instruction-tuning records (a .jsonl file of {"prompt", "completion"} or {"messages": [...]} lines), ' +
            'or use task "lm" for plain text',
        );
      if ('messages' in e && !tokenizer.applyChatTemplate)
        throw noChatTemplate(e.source ?? `dataset ${dataset.name}: ${split} example ${i + 1}`);
    }
  }
}
