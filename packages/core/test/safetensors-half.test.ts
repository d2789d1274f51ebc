import { describe, expect, it } from 'vitest';
import { DeltaTuneError, readSafetensors, readSafetensorsHeader, writeSafetensors, type SafetensorsDtype } from '@deltatune/core';

/*
 * Writing F16/BF16 (and the other non-32-bit dtypes), checked against hand-worked bit patterns and
 * against a nearest-value search written here (which shares no code with the writer), then read back.
 * Reading F16/BF16/F64 decodes on access: a map of tensors holds the file, not a float32 copy too.
 */

const f32Bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];
const fromBits = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];

/** Writes one float32 tensor as `dtype` and gives back the stored 16-bit patterns. */
function stored16(values: Float32Array, dtype: 'F16' | 'BF16'): number[] {
  const bytes = writeSafetensors(new Map([['t', { dtype: 'float32', shape: [values.length], data: values, writeAs: dtype }]]));
  const { entries, dataStart } = readSafetensorsHeader(bytes);
  const e = entries.get('t')!;
  expect(e.dtype).toBe(dtype);
  const [begin, end] = e.data_offsets;
  const copy = bytes.slice(dataStart + begin, dataStart + end);
  return Array.from(new Uint16Array(copy.buffer));
}

/** The value of a half-precision bit pattern, by the IEEE formula (exact in a double). */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 31) return f ? NaN : s * Infinity;
  return e === 0 ? s * f * 2 ** -24 : s * (1024 + f) * 2 ** (e - 25);
}

/** Round-to-nearest-even by search: the representable value closest to x; on a tie, the even pattern. */
function nearest(x: number, patterns: number[], value: (p: number) => number): number {
  let best = -1;
  let bestDist = Infinity;
  for (const p of patterns) {
    const v = value(p);
    if (!Number.isFinite(v)) continue;
    const d = Math.abs(v - x);
    if (d < bestDist || (d === bestDist && (p & 1) === 0 && (best & 1) === 1)) [best, bestDist] = [p, d];
  }
  return best;
}

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

describe('writing bfloat16', () => {
  it('rounds to nearest even on hand-picked values, as torch does', () => {
    const cases: Array<[number, number, string]> = [
      [f32Bits(1), 0x3f80, '1'],
      [0x3f808000, 0x3f80, '1 + 2^-8, halfway: down to the even 1'],
      [0x3f818000, 0x3f82, '1 + 3*2^-8, halfway: up to the even 1 + 2^-6'],
      [0x3f808001, 0x3f81, 'just past halfway: up'],
      [0x3f807fff, 0x3f80, 'just short of halfway: down'],
      [f32Bits(-1.5), 0xbfc0, '-1.5, exact'],
      [0x80000000, 0x8000, '-0 keeps its sign'],
      [f32Bits(Infinity), 0x7f80, 'infinity'],
      [f32Bits(-Infinity), 0xff80, '-infinity'],
      [f32Bits(NaN), 0x7fc0, 'NaN'],
      [0xffc00001, 0x7fc0, 'a negative NaN with a payload: torch gives 0x7fc0'],
      [0x7f7fffff, 0x7f80, 'the largest float32 rounds up to infinity'],
      [0x00010000, 0x0001, 'a bfloat16 subnormal, exact'],
      [0x00008000, 0x0000, 'halfway between 0 and the smallest subnormal: the even 0'],
      [0x00018000, 0x0002, 'halfway between subnormals 1 and 2: the even 2'],
      [0x00000001, 0x0000, 'the smallest float32 subnormal'],
    ];
    const got = stored16(new Float32Array(new Uint32Array(cases.map((c) => c[0])).buffer), 'BF16');
    cases.forEach(([, want, what], i) => expect(got[i], what).toBe(want));
  });

  it('matches a nearest-value search on random float32 patterns, and reads back as the rounded value', () => {
    const rng = mulberry32(0xbf16);
    const bits = new Uint32Array(20_000);
    for (let i = 0; i < bits.length; i++) {
      bits[i] = rng();
      // Not NaN, not the rounding region above the largest finite bfloat16 (checked by hand above).
      if ((bits[i] & 0x7fffffff) >= 0x7f7f8000) bits[i] &= 0xbfffffff;
    }
    const values = new Float32Array(bits.buffer);
    const got = stored16(values, 'BF16');
    const bytes = writeSafetensors(new Map([['t', { dtype: 'float32', shape: [values.length], data: values, writeAs: 'BF16' }]]));
    const back = readSafetensors(bytes).tensors.get('t')!;
    expect(back.storedAs).toBe('BF16');
    const data = back.data;
    for (let i = 0; i < bits.length; i++) {
      const x = values[i];
      // The two candidates: the pattern truncation gives, and the next one away from zero.
      const lo = bits[i] >>> 16;
      const want = nearest(x, [lo, lo + 1], (p) => fromBits(p << 16));
      expect(got[i], `${x} (0x${bits[i].toString(16)})`).toBe(want);
      expect(Object.is(data[i], fromBits(want << 16))).toBe(true);
    }
  });

  it('every bfloat16 pattern survives read then write, NaNs canonical', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const file = writeSafetensors(new Map([['t', { dtype: 'float32', shape: [65536], data: readBf16(all), writeAs: 'BF16' }]]));
    const again = stored16(readSafetensors(file).tensors.get('t')!.data as Float32Array, 'BF16');
    all.forEach((p, i) => expect(again[i]).toBe((p & 0x7fff) > 0x7f80 ? 0x7fc0 : p));
  });
});

/** BF16 bit patterns through the reader. */
function readBf16(patterns: Uint16Array): Float32Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ t: { dtype: 'BF16', shape: [patterns.length], data_offsets: [0, patterns.length * 2] } }),
  );
  const bytes = new Uint8Array(8 + header.length + patterns.length * 2);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  bytes.set(new Uint8Array(patterns.buffer), 8 + header.length);
  return readSafetensors(bytes).tensors.get('t')!.data as Float32Array;
}

describe('writing float16', () => {
  it('rounds to nearest even on hand-picked values, subnormals and overflow included', () => {
    const cases: Array<[number, number, string]> = [
      [1, 0x3c00, '1'],
      [1 + 2 ** -11, 0x3c00, 'halfway: down to the even 1'],
      [1 + 3 * 2 ** -11, 0x3c02, 'halfway: up to the even'],
      [-2.5, 0xc100, '-2.5'],
      [65504, 0x7bff, 'the largest half'],
      [65519, 0x7bff, 'below the halfway point to infinity'],
      [65520, 0x7c00, 'halfway to infinity: rounds to infinity (even)'],
      [1e6, 0x7c00, 'overflow'],
      [-0, 0x8000, '-0'],
      [Infinity, 0x7c00, 'infinity'],
      [-Infinity, 0xfc00, '-infinity'],
      [NaN, 0x7e00, 'NaN'],
      [2 ** -14, 0x0400, 'the smallest normal'],
      [2 ** -24, 0x0001, 'the smallest subnormal'],
      [2 ** -25, 0x0000, 'halfway between 0 and the smallest subnormal: 0'],
      [3 * 2 ** -25, 0x0002, 'halfway between subnormals 1 and 2: 2'],
      [1023.5 * 2 ** -24, 0x0400, 'halfway between the largest subnormal and the smallest normal'],
      [-(2 ** -24) * 0.75, 0x8001, 'a negative value rounding to -smallest subnormal'],
      [1e-10, 0x0000, 'underflow'],
    ];
    const got = stored16(new Float32Array(cases.map((c) => c[0])), 'F16');
    cases.forEach(([, want, what], i) => expect(got[i], what).toBe(want));
  });

  it('matches a nearest-value search over all finite halves, and reads back as the rounded value', () => {
    const rng = mulberry32(0xf16);
    // Magnitudes from 2^-30 to 2^17: past both ends of the half range.
    const values = new Float32Array(5000).map(() => (rng() & 1 ? -1 : 1) * 2 ** ((rng() / 2 ** 32) * 47 - 30));
    const got = stored16(values, 'F16');
    const back = readSafetensors(
      writeSafetensors(new Map([['t', { dtype: 'float32', shape: [values.length], data: values, writeAs: 'F16' }]])),
    ).tensors.get('t')!.data;
    values.forEach((x, i) => {
      // Positive half patterns increase with their value: bracket |x| by bisection, then take the nearer.
      const m = Math.abs(x);
      let [lo, hi] = [0, 0x7bff];
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (halfValue(mid) <= m) lo = mid;
        else hi = mid - 1;
      }
      // IEEE overflow: from the largest finite plus half its ulp (65520) up, the result is infinity.
      let want = m >= 65520 ? 0x7c00 : nearest(m, [lo, Math.min(lo + 1, 0x7bff)], halfValue);
      if (x < 0) want |= 0x8000;
      expect(got[i], String(x)).toBe(want);
      expect(back[i]).toBe(halfValue(want));
    });
  });
});

describe('the writer', () => {
  it('lays tensors out by dtype size, so each starts aligned to its element size; every dtype round-trips', () => {
    const tensors = new Map<
      string,
      { dtype: 'float32' | 'int32'; shape: number[]; data: Float32Array | Int32Array; writeAs: SafetensorsDtype }
    >([
      ['a.bf16', { dtype: 'float32', shape: [3], data: new Float32Array([1, -2, 0.5]), writeAs: 'BF16' }],
      ['b.u8', { dtype: 'int32', shape: [1], data: new Int32Array([255]), writeAs: 'U8' }],
      ['c.f32', { dtype: 'float32', shape: [2], data: new Float32Array([0.1, 3]), writeAs: 'F32' }],
      ['d.f64', { dtype: 'float32', shape: [1], data: new Float32Array([0.1]), writeAs: 'F64' }],
      ['e.i64', { dtype: 'int32', shape: [3], data: new Int32Array([-1, 2147483647, -2147483648]), writeAs: 'I64' }],
      ['f.f16', { dtype: 'float32', shape: [1], data: new Float32Array([0.5]), writeAs: 'F16' }],
      ['g.i16', { dtype: 'int32', shape: [2], data: new Int32Array([-32768, 7]), writeAs: 'I16' }],
      ['h.i8', { dtype: 'int32', shape: [1], data: new Int32Array([-128]), writeAs: 'I8' }],
      ['i.bool', { dtype: 'int32', shape: [2], data: new Int32Array([0, 1]), writeAs: 'BOOL' }],
    ]);
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    const { entries, dataStart } = readSafetensorsHeader(bytes);
    expect(dataStart % 8).toBe(0);
    const size: Record<string, number> = { F64: 8, I64: 8, F32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
    for (const [name, e] of entries) expect(e.data_offsets[0] % size[e.dtype], name).toBe(0);
    const back = readSafetensors(bytes).tensors;
    for (const [name, t] of tensors) {
      expect(back.get(name)!.storedAs).toBe(t.writeAs);
      expect(Array.from(back.get(name)!.data), name).toEqual(Array.from(t.data));
    }
  });

  it('refuses a value the integer dtype cannot hold, a dtype that does not fit the data, and data shorter than the shape', () => {
    const write = (t: object) => () => writeSafetensors(new Map([['t', t as never]]));
    expect(write({ dtype: 'int32', shape: [1], data: new Int32Array([300]), writeAs: 'I8' })).toThrow(/"t" as I8: it holds 300 at index 0/);
    expect(write({ dtype: 'int32', shape: [1], data: new Int32Array([2]), writeAs: 'BOOL' })).toThrow(DeltaTuneError);
    expect(write({ dtype: 'float32', shape: [1], data: new Float32Array([1]), writeAs: 'I32' })).toThrow(
      /cannot write tensor "t" \(float32\) as I32/,
    );
    expect(write({ dtype: 'float32', shape: [1], data: new Float32Array([1]), writeAs: 'F8_E4M3' })).toThrow(DeltaTuneError);
    expect(write({ dtype: 'float32', shape: [2, 2], data: new Float32Array(3) })).toThrow(/holds 4 values, its data has 3/);
  });

  it('without writeAs, a tensor read from a BF16 file is written as F32 (what callers had before)', () => {
    const read = readSafetensors(
      writeSafetensors(new Map([['t', { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]), writeAs: 'BF16' }]])),
    ).tensors;
    expect(readSafetensorsHeader(writeSafetensors(read)).entries.get('t')!.dtype).toBe('F32');
  });
});

describe('reading F16/BF16 decodes on access', () => {
  it('a read 32 MB BF16 file adds no 64 MB of float32 arrays until a tensor is read', () => {
    const n = 16 * 2 ** 20;
    const patterns = new Uint16Array(n).fill(0x3f80);
    const half = 4 * 2 ** 20;
    const header = new TextEncoder().encode(
      JSON.stringify(
        Object.fromEntries(
          [0, 1, 2, 3].map((k) => [`w${k}`, { dtype: 'BF16', shape: [half], data_offsets: [k * half * 2, (k + 1) * half * 2] }]),
        ),
      ),
    );
    const bytes = new Uint8Array(8 + header.length + n * 2);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(header, 8);
    bytes.set(new Uint8Array(patterns.buffer), 8 + header.length);
    const before = process.memoryUsage().arrayBuffers;
    const { tensors } = readSafetensors(bytes);
    const grown = process.memoryUsage().arrayBuffers - before;
    console.log(`reading a ${(bytes.byteLength / 2 ** 20).toFixed(0)} MB BF16 file: arrayBuffers +${(grown / 2 ** 20).toFixed(1)} MB`);
    expect(grown).toBeLessThan(4 * 2 ** 20);
    const w0 = tensors.get('w0')!;
    expect(w0.dtype).toBe('float32');
    expect(w0.data[half - 1]).toBe(1);
    // Spreading copies the decoded values (the getter is an own property), as code that renames tensors does.
    expect({ ...w0 }.data).toBeInstanceOf(Float32Array);
  });
});
