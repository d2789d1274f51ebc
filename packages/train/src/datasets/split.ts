import { DeltaTuneError, createRng, permutation } from '@deltatune/core';
import type { Dataset, Example } from './types';

/** Fixed seed for dataset splits: independent of the training seed, so every run sees the same test set. */
export const SPLIT_SEED = 20_230_301;

export interface SplitFractions {
  readonly validation: number;
  readonly test: number;
}
export const DEFAULT_FRACTIONS: SplitFractions = { validation: 0.15, test: 0.15 };

export interface SplitSizes {
  readonly train: number;
  readonly validation: number;
  readonly test: number;
}

/** How many examples each split of `n` gets (the same arithmetic `splitExamples` cuts with). */
export function splitSizes(n: number, fractions: SplitFractions = DEFAULT_FRACTIONS): SplitSizes {
  const test = Math.round(n * fractions.test);
  const validation = Math.round(n * fractions.validation);
  return { train: n - test - validation, validation, test };
}

/** The fewest examples that leave no split empty, or Infinity when no count does (a fraction of 0). */
export function minimumExamples(fractions: SplitFractions = DEFAULT_FRACTIONS): number {
  // Searched rather than solved: rounding makes the closed form fiddly, and the answer is small (4 for 15/15).
  for (let n = 3; n <= 1_000_000; n++) {
    const s = splitSizes(n, fractions);
    if (s.train > 0 && s.validation > 0 && s.test > 0) return n;
  }
  return Number.POSITIVE_INFINITY;
}

const percent = (f: number) => `${Math.round(f * 1000) / 10}%`;

/**
 * Shuffles with the split seed, then cuts test, validation and train, in that order. Throws when a
 * split would be empty: training and evaluation would otherwise fail much later, inside tfjs.
 */
export function splitExamples<E = Example>(
  name: string,
  labels: readonly string[],
  examples: readonly E[],
  source: string,
  fractions: SplitFractions = DEFAULT_FRACTIONS,
): Dataset<E> {
  const sizes = splitSizes(examples.length, fractions);
  if (sizes.train <= 0 || sizes.validation <= 0 || sizes.test <= 0) {
    const n = examples.length;
    // max: with unusual fractions a count above the minimum can still leave a split empty; ask for more, never "0 more".
    const needed = Math.max(minimumExamples(fractions), n + 1);
    const cut = `${percent(fractions.test)} test, ${percent(fractions.validation)} validation, the rest train`;
    throw new DeltaTuneError(
      `${name}: ${n} record${n === 1 ? '' : 's'} ${n === 1 ? 'is' : 'are'} too few to split (${cut}): ` +
        `at least ${needed} are needed; ${n} would give train ${sizes.train}, validation ${sizes.validation}, test ${sizes.test}`,
      Number.isFinite(needed)
        ? `add at least ${needed - n} more record${needed - n === 1 ? '' : 's'} (several per label, for a meaningful test score)`
        : 'use validation and test fractions above 0',
    );
  }
  const order = permutation(createRng(SPLIT_SEED), examples.length).map((i) => examples[i]);
  const nTest = sizes.test;
  const nVal = sizes.validation;
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
