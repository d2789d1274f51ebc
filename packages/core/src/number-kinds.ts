/**
 * The numeric kinds an option or a saved config field can declare, in one place: the CLI's `--opt`
 * parser, programmatic options and `adapter_config.json` readers all check numbers with these.
 * Each is finite, so a NaN or Infinity never reaches the math.
 */
export type NumberKind =
  'number' | 'finite' | 'integer' | 'positiveInteger' | 'nonNegativeInteger' | 'positive' | 'nonNegative' | 'probability';

export const NUMBER_KINDS: Record<NumberKind, { readonly what: string; readonly ok: (n: number) => boolean; readonly example: string }> = {
  number: { what: 'a finite number', ok: Number.isFinite, example: '1' },
  finite: { what: 'a finite number', ok: Number.isFinite, example: '1' },
  integer: { what: 'an integer', ok: Number.isInteger, example: '0' },
  positiveInteger: { what: 'a positive integer', ok: (n) => Number.isInteger(n) && n > 0, example: '8' },
  nonNegativeInteger: { what: 'a non-negative integer', ok: (n) => Number.isInteger(n) && n >= 0, example: '0' },
  positive: { what: 'a number above 0', ok: (n) => Number.isFinite(n) && n > 0, example: '16' },
  nonNegative: { what: 'a number of 0 or more', ok: (n) => Number.isFinite(n) && n >= 0, example: '0.1' },
  probability: { what: 'a number in [0, 1)', ok: (n) => Number.isFinite(n) && n >= 0 && n < 1, example: '0.1' },
};
