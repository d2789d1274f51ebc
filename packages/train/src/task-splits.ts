import { DeltaTuneError } from '@deltatune/core';
import { tokenizeSplit, type TokenizedSplit } from './batches';
import type { Example, SftExample } from './datasets/types';
import { packSplit } from './sft/pack';
import { tokenizeSftSplit } from './sft/tokenize';
import type { TrainEvent, TrainOptions } from './train-options';

export interface TaskSplits {
  readonly train: TokenizedSplit;
  readonly validation: TokenizedSplit;
  readonly test: TokenizedSplit;
  /** `sft`: examples truncation left nothing to train on, per split. */
  readonly dropped?: Record<'train' | 'validation' | 'test', number>;
}

const SPLITS = ['train', 'validation', 'test'] as const;

/**
 * The dataset's splits tokenized for the task: texts (classification, lm), or prompt/completion and
 * conversations with their loss masks (sft; the training split packed with `pack`).
 */
export function tokenizeTask(o: TrainOptions, emit: (e: TrainEvent) => void): TaskSplits {
  const d = o.dataset;
  if ((o.task ?? 'classification') !== 'sft') {
    const text = (split: (typeof SPLITS)[number]) => tokenizeSplit(o.tokenizer, d[split] as readonly Example[], o.maxLength);
    return { train: text('train'), validation: text('validation'), test: text('test') };
  }
  const dropped = { train: 0, validation: 0, test: 0 };
  const [train, validation, test] = SPLITS.map((split) => {
    const examples = d[split] as readonly SftExample[];
    const s = tokenizeSftSplit(o.tokenizer, examples, o.maxLength, `${d.name} ${split}`);
    dropped[split] = s.dropped;
    if (s.dropped) emit({ type: 'dropped', split, dropped: s.dropped, examples: examples.length, maxLength: o.maxLength });
    if (s.ids.length === 0)
      throw new DeltaTuneError(
        `${d.name}: all ${examples.length} ${split} examples are cut at maxLength ${o.maxLength} before their completion starts: ` +
          'nothing is left to train on or score',
        'raise maxLength (--max-length) above the prompts, or shorten the prompts',
      );
    return s;
  });
  if (!o.pack) return { train, validation, test, dropped };
  const packed = packSplit(train, o.maxLength);
  emit({ type: 'packed', examples: train.ids.length, rows: packed.ids.length });
  return { train: packed, validation, test, dropped };
}
