/**
 * The numeric kinds a flag can declare, with the words its error and its help use. A value outside
 * its kind (`--steps 2.5`, `--batch-size 0`, `--lr -1`) is refused naming the flag, rather than
 * failing, or silently misbehaving, mid-run.
 */
export type FlagNumberKind = 'finite' | 'positive' | 'nonNegative' | 'positiveInteger' | 'nonNegativeInteger' | 'integer';

interface Rule {
  readonly ok: (n: number) => boolean;
  readonly what: string;
  /** A value to show in the fix: the flag's default where it is one of the kind, else a typical one. */
  readonly example: (fallback?: number) => string;
}

export const NUMBER_KINDS: Readonly<Record<FlagNumberKind, Rule>> = {
  finite: { ok: () => true, what: 'a number', example: (f) => String(f ?? 8) },
  positive: { ok: (n) => n > 0, what: 'a positive number', example: (f) => String(f && f > 0 ? f : 0.001) },
  nonNegative: { ok: (n) => n >= 0, what: 'a number >= 0', example: (f) => String(f ?? 0) },
  positiveInteger: { ok: (n) => Number.isInteger(n) && n > 0, what: 'a whole number >= 1', example: (f) => String(f && f > 0 ? f : 8) },
  nonNegativeInteger: { ok: (n) => Number.isInteger(n) && n >= 0, what: 'a whole number >= 0', example: (f) => String(f ?? 0) },
  integer: { ok: (n) => Number.isSafeInteger(n), what: 'a whole number', example: (f) => String(f ?? 0) },
};

export function isNumberKind(type: unknown): type is FlagNumberKind {
  return typeof type === 'string' && Object.prototype.hasOwnProperty.call(NUMBER_KINDS, type);
}

/** The number `text` is, if it is one of `kind`; else undefined. Empty text is no number (`Number('')` is 0). */
export function readNumber(text: string, kind: FlagNumberKind): number | undefined {
  const n = text.trim() === '' ? NaN : Number(text);
  return Number.isFinite(n) && NUMBER_KINDS[kind].ok(n) ? n : undefined;
}
