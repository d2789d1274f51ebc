import { closestNames } from '@deltatune/core';

/**
 * The known flag an unknown one was probably meant to be (`--modle`: `--model`), or undefined when
 * none is near: naming `--backend` for `--bogus` would send the user the wrong way.
 */
export function closestFlag(unknown: string, known: readonly string[]): string | undefined {
  const [best] = closestNames(unknown, known, 1);
  if (best === undefined) return undefined;
  // Close: a typo or two (a third for long names), or one name a prefix of the other (--limit for --limit-train).
  const near = editDistance(unknown, best) <= Math.max(2, Math.floor(best.length / 4));
  const prefix = unknown.length >= 3 && (best.startsWith(unknown) || unknown.startsWith(best));
  return near || prefix ? best : undefined;
}

// core ranks by this distance (closestNames) but does not export it; the threshold is the CLI's own.
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
