/**
 * PEFT's (and LyCORIS's) `factorization(dimension, factor)`: two numbers whose product is
 * `dimension`, the smaller first. A positive `factor` that divides `dimension` is used as is
 * (`[factor, dimension / factor]`, not reordered); otherwise the divisor pair nearest the square
 * root whose smaller side is at most `factor` (`-1`: no bound). Mirrors PEFT's loop exactly, so
 * LoKr factor shapes, and so saved files, agree with PEFT's: 768 -> [24, 32], 32 -> [4, 8], 127 -> [1, 127].
 */
export function factorization(dimension: number, factor = -1): [number, number] {
  if (factor > 0 && dimension % factor === 0) return [factor, dimension / factor];
  const bound = factor === -1 ? dimension : factor;
  let m = 1;
  let n = dimension;
  // PEFT compares against the first pair's sum and never updates it: every divisor pair passes.
  const length = m + n;
  while (m < n) {
    let next = m + 1;
    while (dimension % next !== 0) next++;
    const other = dimension / next;
    if (next + other > length || next > bound) break;
    m = next;
    n = other;
  }
  return m > n ? [n, m] : [m, n];
}
