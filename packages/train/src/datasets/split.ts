import { createRng, permutation } from '@deltatune/core';
import type { Dataset, Example } from './types';

/** Fixed seed for dataset splits: independent of the training seed, so every run sees the same test set. */
export const SPLIT_SEED = 20_230_301;

export interface SplitFractions {
  readonly validation: number;
  readonly test: number;
}
export const DEFAULT_FRACTIONS: SplitFractions = { validation: 0.15, test: 0.15 };

/** Shuffles with the split seed, then cuts test, validation and train, in that order. */
export function splitExamples(
  name: string,
  labels: readonly string[],
  examples: readonly Example[],
  source: string,
  fractions: SplitFractions = DEFAULT_FRACTIONS,
): Dataset {
  const order = permutation(createRng(SPLIT_SEED), examples.length).map((i) => examples[i]);
  const nTest = Math.round(examples.length * fractions.test);
  const nVal = Math.round(examples.length * fractions.validation);
  return {
    name,
    labels,
    source,
    test: order.slice(0, nTest),
    validation: order.slice(nTest, nTest + nVal),
    train: order.slice(nTest + nVal),
  };
}

/**
 * Splits by group (a document), so pieces of one document never land on both sides of a split:
 * whole groups go to test, validation, train.
 */
export function splitByGroup(
  name: string,
  labels: readonly string[],
  groups: ReadonlyArray<readonly Example[]>,
  source: string,
  fractions: SplitFractions = DEFAULT_FRACTIONS,
): Dataset {
  const order = permutation(createRng(SPLIT_SEED), groups.length).map((i) => groups[i]);
  const total = groups.reduce((n, g) => n + g.length, 0);
  const test: Example[] = [];
  const validation: Example[] = [];
  const train: Example[] = [];
  for (const g of order) {
    const target = test.length < total * fractions.test ? test : validation.length < total * fractions.validation ? validation : train;
    target.push(...g);
  }
  // Shuffle within each split, so a prefix (limitDataset) samples across groups, not a few of them.
  const shuffle = (xs: Example[], salt: number) => permutation(createRng(SPLIT_SEED + salt), xs.length).map((i) => xs[i]);
  return { name, labels, source, test: shuffle(test, 1), validation: shuffle(validation, 2), train: shuffle(train, 3) };
}
