import { createRng } from '@deltatune/core';

/**
 * Top-`rank` singular triplets of a dense row-major `[m, n]` matrix, by randomized subspace
 * iteration (Halko et al. 2011) with a Jacobi eigen-solve of the small projected problem. Enough
 * for LoRA-sized truncations; float64 throughout.
 */
export function truncatedSvd(
  a: Float64Array,
  m: number,
  n: number,
  rank: number,
  seed = 0,
): { u: Float64Array; s: Float64Array; vt: Float64Array } {
  const k = Math.min(Math.min(m, n), rank + 8);
  const rng = createRng(seed);
  // Y = A * Omega, Omega [n, k] Gaussian-ish
  let q = new Float64Array(m * k);
  const omega = new Float64Array(n * k).map(() => rng.next() * 2 - 1);
  matmul(a, omega, q, m, n, k);
  orthonormalize(q, m, k);
  for (let it = 0; it < 3; it++) {
    const z = new Float64Array(n * k);
    matmulTransA(a, q, z, m, n, k); // z = A^T q
    orthonormalize(z, n, k);
    q = new Float64Array(m * k);
    matmul(a, z, q, m, n, k);
    orthonormalize(q, m, k);
  }
  // B = Q^T A [k, n]; B B^T = W diag(s^2) W^T
  const b = new Float64Array(k * n);
  for (let i = 0; i < k; i++)
    for (let r = 0; r < m; r++) {
      const qi = q[r * k + i];
      if (qi === 0) continue;
      for (let j = 0; j < n; j++) b[i * n + j] += qi * a[r * n + j];
    }
  const bbt = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = i; j < k; j++) {
      let sum = 0;
      for (let t = 0; t < n; t++) sum += b[i * n + t] * b[j * n + t];
      bbt[i * k + j] = bbt[j * k + i] = sum;
    }
  const { values, vectors } = jacobiEigen(bbt, k);
  const order = Array.from({ length: k }, (_, i) => i)
    .sort((x, y) => values[y] - values[x])
    .slice(0, rank);
  const u = new Float64Array(m * rank);
  const s = new Float64Array(rank);
  const vt = new Float64Array(rank * n);
  order.forEach((col, c) => {
    const sigma = Math.sqrt(Math.max(values[col], 0));
    s[c] = sigma;
    for (let r = 0; r < m; r++) {
      let sum = 0;
      for (let i = 0; i < k; i++) sum += q[r * k + i] * vectors[i * k + col];
      u[r * rank + c] = sum;
    }
    if (sigma > 1e-12 * Math.sqrt(Math.max(values[order[0]], 0)))
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let i = 0; i < k; i++) sum += vectors[i * k + col] * b[i * n + j];
        vt[c * n + j] = sum / sigma;
      }
  });
  return { u, s, vt };
}

function matmul(a: Float64Array, b: Float64Array, out: Float64Array, m: number, n: number, k: number): void {
  for (let i = 0; i < m; i++)
    for (let t = 0; t < n; t++) {
      const x = a[i * n + t];
      if (x === 0) continue;
      for (let j = 0; j < k; j++) out[i * k + j] += x * b[t * k + j];
    }
}

function matmulTransA(a: Float64Array, q: Float64Array, out: Float64Array, m: number, n: number, k: number): void {
  for (let r = 0; r < m; r++)
    for (let t = 0; t < n; t++) {
      const x = a[r * n + t];
      if (x === 0) continue;
      for (let j = 0; j < k; j++) out[t * k + j] += x * q[r * k + j];
    }
}

/**
 * Gram-Schmidt on the columns of a row-major `[rows, cols]` matrix, projecting twice (one pass
 * loses orthogonality on nearly dependent columns). A column that is numerically inside the span
 * of the previous ones (a rank-deficient input) becomes zero rather than normalised noise.
 */
function orthonormalize(x: Float64Array, rows: number, cols: number): void {
  const normOf = (c: number) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * cols + c] ** 2;
    return Math.sqrt(s);
  };
  for (let c = 0; c < cols; c++) {
    const before = normOf(c);
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < c; p++) {
        let dot = 0;
        for (let r = 0; r < rows; r++) dot += x[r * cols + c] * x[r * cols + p];
        for (let r = 0; r < rows; r++) x[r * cols + c] -= dot * x[r * cols + p];
      }
    }
    const norm = normOf(c);
    const keep = norm > 1e-10 * before && norm > 1e-300;
    for (let r = 0; r < rows; r++) x[r * cols + c] = keep ? x[r * cols + c] / norm : 0;
  }
}

/** Eigen-decomposition of a symmetric `[n, n]` matrix by cyclic Jacobi rotations. */
export function jacobiEigen(input: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(input);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < n; r++) {
          const arp = a[r * n + p];
          const arq = a[r * n + q];
          a[r * n + p] = c * arp - s * arq;
          a[r * n + q] = s * arp + c * arq;
        }
        for (let r = 0; r < n; r++) {
          const apr = a[p * n + r];
          const aqr = a[q * n + r];
          a[p * n + r] = c * apr - s * aqr;
          a[q * n + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < n; r++) {
          const vrp = v[r * n + p];
          const vrq = v[r * n + q];
          v[r * n + p] = c * vrp - s * vrq;
          v[r * n + q] = s * vrp + c * vrq;
        }
      }
  }
  return { values: Float64Array.from({ length: n }, (_, i) => a[i * n + i]), vectors: v };
}
