import { describe, expect, it } from 'vitest';
import { DeltaTuneError, readSafetensors, readSafetensorsHeader, writeSafetensors } from '@deltatune/core';

/*
 * The safetensors reader must accept every file the format allows and reject everything else with a
 * DeltaTuneError. The fuzz below generates spec-valid files, mutates them, and judges each case either
 * by construction (structured mutations) or with the spec-literal reference validator written here, which
 * shares no code with the implementation.
 */

const SEED = 0x5afe7e45;
const FILES = 2000;
const SOURCE = 'fuzz.safetensors';

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
type Rng = () => number;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1)); // inclusive
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
function shuffle<T>(rng: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

// ---------------------------------------------------------------------------------------------
// Spec-literal reference validator and decoder (deliberately naive; BigInt where sizes could overflow).
// ---------------------------------------------------------------------------------------------

const SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const SUPPORTED = Object.keys(SIZE);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

interface Expected {
  dtype: string;
  shape: number[];
  values: number[];
  /** F32/I32 raw 32-bit patterns, compared bitwise (NaN payloads included). */
  bits?: number[];
}
type Verdict = { ok: true; tensors: Map<string, Expected> } | { ok: false; why: string };

/** RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
function isUtf8(b: Uint8Array): boolean {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let need: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) [need, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [need, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [need, min] = [3, 0x10000];
    else return false;
    if (i + need >= b.length) return false; // the sequence runs past the end
    let cp = c & (need === 1 ? 0x1f : need === 2 ? 0x0f : 0x07);
    for (let k = 1; k <= need; k++) {
      const d = b[i + k];
      if ((d & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += need + 1;
  }
  return true;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;

function f16(h: number): number {
  const sign = h >> 15 ? -1 : 1;
  const exp = (h >> 10) & 31;
  const mant = h & 1023;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * Math.pow(2, -24);
  return sign * (mant + 1024) * Math.pow(2, exp - 25);
}
const bfScratch = new DataView(new ArrayBuffer(4));
function bf16(h: number): number {
  bfScratch.setUint32(0, h * 65536);
  return bfScratch.getFloat32(0);
}

function referenceValidate(file: Uint8Array): Verdict {
  const no = (why: string): Verdict => ({ ok: false, why });
  if (file.length < 8) return no('shorter than 8 bytes');
  let n = 0n;
  for (let i = 7; i >= 0; i--) n = n * 256n + BigInt(file[i]);
  if (n > 100_000_000n) return no('header over 100 MB');
  if (8n + n > BigInt(file.length)) return no('header past end of file');
  const hb = file.slice(8, 8 + Number(n));
  if (hb.length === 0 || hb[0] !== 0x7b) return no('header does not start with {');
  if (!isUtf8(hb)) return no('header not UTF-8');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { ignoreBOM: true }).decode(hb));
  } catch {
    return no('header not JSON');
  }
  if (!isObj(header)) return no('header not an object');
  const dataStart = 8 + Number(n);
  const dataLen = file.length - dataStart;
  const list: Array<{ name: string; dtype: string; shape: number[]; b: number; e: number }> = [];
  for (const key of Object.keys(header)) {
    const v = header[key];
    if (key === '__metadata__') {
      if (v === null) continue;
      if (!isObj(v)) return no('metadata not an object');
      for (const k of Object.keys(v)) if (typeof v[k] !== 'string') return no('metadata value not a string');
      continue;
    }
    if (!isObj(v)) return no('entry not an object');
    const { dtype, shape, data_offsets: off } = v;
    if (typeof dtype !== 'string' || !SUPPORTED.includes(dtype)) return no('dtype');
    if (!Array.isArray(shape) || !shape.every(isUint)) return no('shape');
    if (!Array.isArray(off) || off.length !== 2 || !isUint(off[0]) || !isUint(off[1])) return no('offsets');
    const [b, e] = off as number[];
    if (b > e) return no('begin > end');
    let count = 1n;
    for (const d of shape as number[]) {
      count *= BigInt(d);
      if (count > MAX_SAFE) return no('count overflow');
    }
    const nbytes = count * BigInt(SIZE[dtype]);
    if (nbytes > MAX_SAFE) return no('bytes overflow');
    if (BigInt(e - b) !== nbytes) return no('size mismatch');
    list.push({ name: key, dtype, shape: (shape as number[]).map((d) => d + 0), b: b + 0, e: e + 0 });
  }
  list.sort((x, y) => (x.b !== y.b ? x.b - y.b : x.e - y.e));
  let at = 0;
  for (const t of list) {
    if (t.b !== at) return no(t.b < at ? 'overlap' : 'hole');
    at = t.e;
  }
  if (at !== dataLen) return no('data not fully indexed');
  const tensors = new Map<string, Expected>();
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  for (const t of list) {
    const size = SIZE[t.dtype];
    const count = (t.e - t.b) / size;
    const values: number[] = [];
    const bits: number[] = [];
    for (let i = 0; i < count; i++) {
      const p = dataStart + t.b + i * size;
      switch (t.dtype) {
        case 'F64':
          values.push(Math.fround(dv.getFloat64(p, true)));
          break;
        case 'F32':
          values.push(dv.getFloat32(p, true));
          bits.push(dv.getUint32(p, true));
          break;
        case 'F16':
          values.push(f16(dv.getUint16(p, true)));
          break;
        case 'BF16':
          values.push(bf16(dv.getUint16(p, true)));
          break;
        case 'I64': {
          const v = dv.getBigInt64(p, true);
          if (v < -(2n ** 31n) || v >= 2n ** 31n) return no('I64 value outside int32');
          values.push(Number(v));
          break;
        }
        case 'I32':
          values.push(dv.getInt32(p, true));
          bits.push(dv.getUint32(p, true));
          break;
        case 'I16':
          values.push(dv.getInt16(p, true));
          break;
        case 'I8':
          values.push(dv.getInt8(p));
          break;
        default:
          values.push(dv.getUint8(p)); // U8, BOOL
      }
    }
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, values, bits: bits.length === count && count > 0 ? bits : undefined });
  }
  return { ok: true, tensors };
}

// ---------------------------------------------------------------------------------------------
// Generator of valid files, and a serialiser that structured mutations can bend.
// ---------------------------------------------------------------------------------------------

interface GenTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}
interface Spec {
  tensors: GenTensor[];
  metadata?: Record<string, string>;
  /** Order of keys in the JSON ('meta' = __metadata__), independent of the order of the data. */
  jsonOrder: Array<number | 'meta'>;
  dataOrder: number[];
  pad: string;
}

const NAME_PARTS = [
  'model',
  'layers',
  'weight',
  'bias',
  'lora_A',
  'lora_B',
  'attn',
  'mlp',
  'q_proj',
  'wte',
  'é',
  '日本',
  '😀',
  'a"b',
  'x\\y',
  'nl\n',
];

function genValid(rng: Rng): Spec {
  const count = int(rng, 1, 6);
  const names = new Set<string>();
  while (names.size < count) names.add(`${pick(rng, NAME_PARTS)}.${int(rng, 0, 9)}.${pick(rng, NAME_PARTS)}`);
  const tensors = [...names].map((name) => {
    const dtype = pick(rng, SUPPORTED);
    const rank = int(rng, 0, 3);
    const shape = Array.from({ length: rank }, () => (rng() < 0.08 ? 0 : int(rng, 1, 5)));
    const n = shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(n * SIZE[dtype]);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      if (dtype === 'I64')
        dv.setBigInt64(i * 8, BigInt((rng() * 2 ** 32) | 0), true); // int32 range, sign-extended
      else if (dtype === 'BOOL') bytes[i] = rng() < 0.5 ? 1 : 0;
      else for (let k = 0; k < SIZE[dtype]; k++) bytes[i * SIZE[dtype] + k] = int(rng, 0, 255);
    }
    return { name, dtype, shape, bytes };
  });
  const metadata = rng() < 0.5 ? { format: 'pt', ...(rng() < 0.5 ? { note: `r=${int(rng, 1, 64)} ü ✓` } : {}) } : undefined;
  const jsonOrder: Array<number | 'meta'> = shuffle(rng, [...tensors.keys(), ...(metadata ? (['meta'] as const) : [])]);
  const dataOrder = shuffle(rng, [...tensors.keys()]);
  const pad = rng() < 0.3 ? '' : ' '.repeat(int(rng, 0, 7));
  return { tensors, metadata, jsonOrder, dataOrder, pad };
}

type Pair = [string, unknown];
function layout(spec: Spec): { pairs: Pair[]; data: Uint8Array } {
  const offsets = new Map<number, [number, number]>();
  let at = 0;
  for (const i of spec.dataOrder) {
    offsets.set(i, [at, at + spec.tensors[i].bytes.length]);
    at += spec.tensors[i].bytes.length;
  }
  const data = new Uint8Array(at);
  for (const i of spec.dataOrder) data.set(spec.tensors[i].bytes, offsets.get(i)![0]);
  const pairs: Pair[] = spec.jsonOrder.map((k) => {
    if (k === 'meta') return ['__metadata__', { ...spec.metadata }];
    const t = spec.tensors[k];
    return [t.name, { dtype: t.dtype, shape: [...t.shape], data_offsets: [...offsets.get(k)!] }];
  });
  return { pairs, data };
}

const enc = new TextEncoder();
const headerText = (pairs: Pair[]) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;

/** The file from raw header bytes; `length` overrides the 8-byte header length. */
function assemble(header: Uint8Array, data: Uint8Array, length: bigint = BigInt(header.length)): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length, true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}
const fileOf = (pairs: Pair[], data: Uint8Array, pad = '') => assemble(enc.encode(headerText(pairs) + pad), data);
const build = (spec: Spec) => {
  const { pairs, data } = layout(spec);
  return fileOf(pairs, data, spec.pad);
};

const tensorPairs = (pairs: Pair[]) => pairs.filter(([k]) => k !== '__metadata__') as Array<[string, Record<string, unknown>]>;
const elements = (e: Record<string, unknown>) => (e.shape as number[]).reduce((a, b) => a * b, 1);
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const randomBytes = (rng: Rng, n: number) => Uint8Array.from({ length: n }, () => int(rng, 0, 255));

// ---------------------------------------------------------------------------------------------
// Structured mutations, each with its verdict known by construction (null when not applicable).
// ---------------------------------------------------------------------------------------------

interface Case {
  kind: string;
  bytes: Uint8Array;
  /** The verdict by construction; undefined means the reference validator decides. */
  valid?: boolean;
}
type Mutation = (spec: Spec, rng: Rng) => Omit<Case, 'kind'> | null;

function withEntry(spec: Spec, rng: Rng, want: (e: Record<string, unknown>) => boolean, change: (e: Record<string, unknown>) => void) {
  const { pairs, data } = layout(spec);
  const candidates = tensorPairs(pairs).filter(([, e]) => want(e));
  if (candidates.length === 0) return null;
  change(pick(rng, candidates)[1]);
  return { pairs, data };
}
const invalidIf = (r: { pairs: Pair[]; data: Uint8Array } | null, pad = '') =>
  r ? { bytes: fileOf(r.pairs, r.data, pad), valid: false } : null;
const validIf = (r: { pairs: Pair[]; data: Uint8Array } | null, pad = '') =>
  r ? { bytes: fileOf(r.pairs, r.data, pad), valid: true } : null;
const nonEmpty = (e: Record<string, unknown>) => elements(e) > 0;
const any = () => true;

const STRUCTURED: Record<string, Mutation> = {
  // Two names share the same bytes: a writer bug that would silently alias tensors.
  overlap: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const src = tensorPairs(pairs).filter(([, e]) => nonEmpty(e));
    if (!src.length) return null;
    const [name, e] = pick(rng, src);
    pairs.splice(int(rng, 0, pairs.length), 0, [`${name}#alias`, structuredClone(e)]);
    return { bytes: fileOf(pairs, data), valid: false };
  },
  overlapShifted: (spec, rng) => {
    const r = withEntry(
      spec,
      rng,
      (e) => (e.data_offsets as number[])[0] > 0 && nonEmpty(e),
      (e) => {
        const o = e.data_offsets as number[];
        e.data_offsets = [o[0] - 1, o[1] - 1];
      },
    );
    return invalidIf(r);
  },
  hole: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const bounds = [...new Set(tensorPairs(pairs).map(([, e]) => (e.data_offsets as number[])[0]))];
    const cut = pick(rng, bounds);
    const gap = int(rng, 1, 8);
    for (const [, e] of tensorPairs(pairs)) {
      const o = e.data_offsets as number[];
      if (o[0] >= cut) e.data_offsets = [o[0] + gap, o[1] + gap];
    }
    return { bytes: fileOf(pairs, concat(data.subarray(0, cut), randomBytes(rng, gap), data.subarray(cut))), valid: false };
  },
  trailingBytes: (spec, rng) => {
    const { pairs, data } = layout(spec);
    return { bytes: fileOf(pairs, concat(data, randomBytes(rng, int(rng, 1, 8))), spec.pad), valid: false };
  },
  truncatedData: (spec, rng) => {
    const { pairs, data } = layout(spec);
    if (data.length === 0) return null;
    return { bytes: fileOf(pairs, data.subarray(0, data.length - int(rng, 1, data.length)), spec.pad), valid: false };
  },
  offsetsAsStrings: (spec, rng) => invalidIf(withEntry(spec, rng, any, (e) => (e.data_offsets = (e.data_offsets as number[]).map(String)))),
  offsetsArity: (spec, rng) =>
    invalidIf(
      withEntry(spec, rng, any, (e) => {
        const [b, x] = e.data_offsets as number[];
        e.data_offsets = pick(rng, [[], [b], [b, x, x], { 0: b, 1: x }, `${b},${x}`, null]);
      }),
    ),
  offsetsFractional: (spec, rng) =>
    invalidIf(withEntry(spec, rng, any, (e) => (e.data_offsets = (e.data_offsets as number[]).map((o) => o + 0.5)))),
  offsetsNegative: (spec, rng) =>
    invalidIf(withEntry(spec, rng, any, (e) => (e.data_offsets = (e.data_offsets as number[]).map((o) => o - 1 - int(rng, 0, 3))))),
  offsetsUnsafe: (spec, rng) =>
    invalidIf(withEntry(spec, rng, any, (e) => (e.data_offsets = (e.data_offsets as number[]).map((o) => o + 2 ** 53)))),
  beginAfterEnd: (spec, rng) =>
    invalidIf(withEntry(spec, rng, nonEmpty, (e) => (e.data_offsets = [...(e.data_offsets as number[])].reverse()))),
  // Shapes whose product still matches the byte count, so only the per-dimension check can catch them.
  shapeNegative: (spec, rng) => invalidIf(withEntry(spec, rng, any, (e) => (e.shape = [-1, -elements(e)]))),
  shapeFractional: (spec, rng) => invalidIf(withEntry(spec, rng, any, (e) => (e.shape = [0.5, 2 * elements(e)]))),
  shapeString: (spec, rng) =>
    invalidIf(
      withEntry(spec, rng, any, (e) => {
        const dims = e.shape as number[];
        e.shape = pick(rng, [dims.length ? dims.map(String) : ['1'], String(elements(e)), null, {}]);
      }),
    ),
  shapeOverflow: (spec, rng) =>
    invalidIf(
      withEntry(
        spec,
        rng,
        (e) => !nonEmpty(e),
        (e) =>
          (e.shape = pick(rng, [
            [2 ** 27, 2 ** 27, 2 ** 27, 0],
            [2 ** 60, 0],
            [2 ** 53, 0],
          ])),
      ),
    ),
  dtypeOtherSize: (spec, rng) =>
    invalidIf(
      withEntry(
        spec,
        rng,
        nonEmpty,
        (e) =>
          (e.dtype = pick(
            rng,
            SUPPORTED.filter((d) => SIZE[d] !== SIZE[e.dtype as string]),
          )),
      ),
    ),
  // Same element size: the bytes are reinterpreted, still a valid file (I64 excluded: its values are range-checked).
  dtypeSameSize: (spec, rng) =>
    validIf(
      withEntry(
        spec,
        rng,
        any,
        (e) =>
          (e.dtype = pick(
            rng,
            SUPPORTED.filter((d) => d !== 'I64' && SIZE[d] === SIZE[e.dtype as string]),
          )),
      ),
    ),
  dtypeUnknown: (spec, rng) =>
    invalidIf(
      withEntry(spec, rng, any, (e) => (e.dtype = pick(rng, ['U16', 'F8_E4M3', 'float32', 'f32', '', 'toString', '__proto__', 7, null]))),
    ),
  missingField: (spec, rng) => invalidIf(withEntry(spec, rng, any, (e) => delete e[pick(rng, ['dtype', 'shape', 'data_offsets'])])),
  entryNotObject: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const i = pick(
      rng,
      [...pairs.keys()].filter((k) => pairs[k][0] !== '__metadata__'),
    );
    const e = pairs[i][1] as Record<string, unknown>;
    pairs[i] = [pairs[i][0], pick(rng, [null, 1, 'F32', [e.dtype, e.shape, e.data_offsets], true])];
    return { bytes: fileOf(pairs, data), valid: false };
  },
  extraField: (spec, rng) =>
    validIf(withEntry(spec, rng, any, (e) => (e[pick(rng, ['note', 'offsets', 'x'])] = pick(rng, [1, 'a', null, [1.5], {}])))),
  metadataNotStrings: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const bad = pick(rng, [{ format: 1 }, { format: null }, { a: 'x', b: ['y'] }, { a: {} }, ['pt'], 'pt', 5, true]);
    const i = pairs.findIndex(([k]) => k === '__metadata__');
    if (i >= 0) pairs[i] = ['__metadata__', bad];
    else pairs.splice(int(rng, 0, pairs.length), 0, ['__metadata__', bad]);
    return { bytes: fileOf(pairs, data), valid: false };
  },
  // The reference reads __metadata__ as an optional map: null is "no metadata".
  metadataNull: (spec, rng) => {
    const { pairs, data } = layout(spec);
    pairs.splice(int(rng, 0, pairs.length), 0, ['__metadata__', null]);
    return {
      bytes: fileOf(
        pairs.filter(([k, v]) => k !== '__metadata__' || v === null),
        data,
      ),
      valid: true,
    };
  },
  headerNotObject: (spec, rng) => {
    const { data } = layout(spec);
    const text = pick(rng, ['[]', '[{"a":1}]', '1', 'null', '"x"', 'true', '{', '{}}', '{"a":}', '']);
    return { bytes: assemble(enc.encode(text + spec.pad), data), valid: false };
  },
  emptyHeader: (spec, rng) => {
    const meta = rng() < 0.5 ? { __metadata__: { format: 'pt' } } : {};
    return { bytes: assemble(enc.encode(JSON.stringify(meta) + spec.pad), new Uint8Array(0)), valid: true };
  },
  invalidUtf8: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const where = pick(rng, [...pairs.keys()]);
    const marker = '\u0001MARK\u0001';
    pairs[where] =
      pairs[where][0] === '__metadata__'
        ? ['__metadata__', { ...(pairs[where][1] as object), note: `a${marker}b` }]
        : [`${pairs[where][0]}${marker}`, pairs[where][1]];
    const text = enc.encode(headerText(pairs) + spec.pad);
    const m = enc.encode(JSON.stringify(marker).slice(1, -1));
    const at = indexOf(text, m);
    const bad = Uint8Array.from(
      pick(rng, [[0xff], [0xc0, 0x80], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80]]),
    );
    return { bytes: assemble(concat(text.subarray(0, at), bad, text.subarray(at + m.length)), data), valid: false };
  },
  byteOrderMark: (spec) => {
    const { pairs, data } = layout(spec);
    return { bytes: assemble(concat(Uint8Array.of(0xef, 0xbb, 0xbf), enc.encode(headerText(pairs) + spec.pad)), data), valid: false };
  },
  leadingSpace: (spec, rng) => {
    const { pairs, data } = layout(spec);
    return { bytes: assemble(enc.encode(pick(rng, [' ', '\n', '\t']) + headerText(pairs) + spec.pad), data), valid: false };
  },
  trailingGarbageInHeader: (spec, rng) => {
    const { pairs, data } = layout(spec);
    return { bytes: fileOf(pairs, data, spec.pad + pick(rng, ['x', '\u0000', ',', '}', '{}', '0'])), valid: false };
  },
  trailingWhitespaceMix: (spec, rng) => {
    const { pairs, data } = layout(spec);
    return {
      bytes: fileOf(pairs, data, Array.from({ length: int(rng, 1, 9) }, () => pick(rng, [' ', '\t', '\n', '\r'])).join('')),
      valid: true,
    };
  },
  prettyPrinted: (spec, rng) => {
    const { pairs, data } = layout(spec);
    return { bytes: assemble(enc.encode(JSON.stringify(Object.fromEntries(pairs), null, int(rng, 1, 4)) + spec.pad), data), valid: true };
  },
  headerLengthTooBig: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const header = enc.encode(headerText(pairs) + spec.pad);
    const total = BigInt(8 + header.length + data.length);
    const length = pick(rng, [BigInt(header.length + int(rng, 1, 8)), total - 7n, total, 100_000_001n, 2n ** 53n + 1n, 2n ** 64n - 1n]);
    return { bytes: assemble(header, data, length), valid: false };
  },
  headerLengthTooSmall: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const header = enc.encode(headerText(pairs) + spec.pad);
    return { bytes: assemble(header, data, BigInt(header.length - int(rng, 1, Math.min(8, header.length)))), valid: false };
  },
  i64OutOfRange: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const v = pick(rng, [2n ** 31n, -(2n ** 31n) - 1n, 2n ** 62n, -(2n ** 63n), BigInt(2 ** 40 + int(rng, 0, 999))]);
    const extra = new Uint8Array(8);
    new DataView(extra.buffer).setBigInt64(0, v, true);
    pairs.push(['big', { dtype: 'I64', shape: [1], data_offsets: [data.length, data.length + 8] }]);
    return { bytes: fileOf(pairs, concat(data, extra)), valid: false };
  },
  i64Edges: (spec, rng) => {
    const { pairs, data } = layout(spec);
    const extra = new Uint8Array(16);
    new DataView(extra.buffer).setBigInt64(0, -(2n ** 31n), true);
    new DataView(extra.buffer).setBigInt64(8, 2n ** 31n - 1n, true);
    pairs.splice(int(rng, 0, pairs.length), 0, ['edges', { dtype: 'I64', shape: [2], data_offsets: [data.length, data.length + 16] }]);
    return { bytes: fileOf(pairs, concat(data, extra)), valid: true };
  },
};

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  throw new Error('marker not found');
}

// Byte-level mutations: the reference validator decides.
const JSONISH = enc.encode('{}[],:"0123456789-.e E+ \\ntu');
const RANDOM: Record<string, (file: Uint8Array, rng: Rng) => Uint8Array> = {
  bitFlip: (f, rng) => {
    const out = f.slice();
    out[int(rng, 0, out.length - 1)] ^= 1 << int(rng, 0, 7);
    return out;
  },
  byteSet: (f, rng) => {
    const out = f.slice();
    out[int(rng, 0, out.length - 1)] = int(rng, 0, 255);
    return out;
  },
  headerChar: (f, rng) => {
    const out = f.slice();
    const n = Number(new DataView(f.buffer, f.byteOffset).getBigUint64(0, true));
    out[8 + int(rng, 0, n - 1)] = pick(rng, [...JSONISH]);
    return out;
  },
  // Digit swaps keep the JSON parseable, so they reach the shape, offset and coverage checks.
  digitTweak: (f, rng) => {
    const out = f.slice();
    const n = Number(new DataView(f.buffer, f.byteOffset).getBigUint64(0, true));
    const digits = [...Array(n).keys()].filter((i) => out[8 + i] >= 0x30 && out[8 + i] <= 0x39);
    if (digits.length) out[8 + pick(rng, digits)] = 0x30 + int(rng, 0, 9);
    return out;
  },
  headerSplice: (f, rng) => {
    const n = Number(new DataView(f.buffer, f.byteOffset).getBigUint64(0, true));
    const header = f.slice(8, 8 + n);
    const at = int(rng, 0, n - 1);
    const edited =
      rng() < 0.5
        ? concat(header.subarray(0, at), header.subarray(at + 1))
        : concat(header.subarray(0, at), Uint8Array.of(pick(rng, [...JSONISH])), header.subarray(at));
    return assemble(edited, f.subarray(8 + n));
  },
  truncate: (f, rng) => f.slice(0, int(rng, 0, f.length - 1)),
  extend: (f, rng) => concat(f, randomBytes(rng, int(rng, 1, 16))),
  lengthField: (f, rng) => {
    const out = f.slice();
    const dv = new DataView(out.buffer);
    dv.setBigUint64(0, BigInt.asUintN(64, dv.getBigUint64(0, true) + BigInt(pick(rng, [-8, -3, -1, 1, 2, 7]))), true);
    return out;
  },
};

// Input containers: the data start must not need any alignment, whatever the container's byteOffset.
const WRAPPERS: Record<string, (b: Uint8Array, rng: Rng) => Uint8Array> = {
  uint8array: (b) => b.slice(),
  buffer: (b) => Buffer.from(b),
  pooledBufferOddOffset: (b, rng) => {
    const k = int(rng, 1, 7);
    return Buffer.concat([Buffer.alloc(k), b]).subarray(k);
  },
  uint8arrayOddOffset: (b, rng) => {
    const k = int(rng, 1, 7);
    const host = new Uint8Array(b.length + k + int(rng, 0, 5));
    host.set(b, k);
    return host.subarray(k, k + b.length);
  },
};

// ---------------------------------------------------------------------------------------------

/** Checks the implementation's tensors against the reference decoding; returns a problem or null. */
function compare(got: ReturnType<typeof readSafetensors>['tensors'], want: Map<string, Expected>): string | null {
  if (got.size !== want.size) return `got ${got.size} tensors, want ${want.size}`;
  for (const [name, w] of want) {
    const g = got.get(name);
    if (!g) return `missing ${name}`;
    if (g.storedAs !== w.dtype) return `${name}: storedAs ${g.storedAs}, want ${w.dtype}`;
    if (JSON.stringify(g.shape) !== JSON.stringify(w.shape)) return `${name}: shape ${JSON.stringify(g.shape)}`;
    const floaty = ['F64', 'F32', 'F16', 'BF16'].includes(w.dtype);
    if (g.dtype !== (floaty ? 'float32' : 'int32')) return `${name}: dtype ${g.dtype}`;
    if (g.data.length !== w.values.length) return `${name}: ${g.data.length} values, want ${w.values.length}`;
    for (let i = 0; i < w.values.length; i++)
      if (!Object.is(g.data[i], w.values[i])) return `${name}[${i}]: ${g.data[i]} != ${w.values[i]}`;
    if (w.bits) {
      const bits = new Uint32Array(g.data.buffer, g.data.byteOffset, g.data.length);
      for (let i = 0; i < w.bits.length; i++) if (bits[i] !== w.bits[i]) return `${name}[${i}]: bits ${bits[i]} != ${w.bits[i]}`;
    }
  }
  return null;
}

describe('safetensors reader', () => {
  it('fuzz: accepts every valid file with the right values, rejects every invalid one with a DeltaTuneError', () => {
    const rng = mulberry32(SEED);
    const started = performance.now();
    const totals = { validAccepted: 0, validRejected: 0, invalidRejected: 0, invalidAccepted: 0, otherExceptions: 0, wrongValues: 0 };
    const oracleDisagrees: string[] = [];
    const badMessages: string[] = [];
    const failures: string[] = [];
    const byKind = new Map<string, { valid: number; invalid: number }>();

    const run = (c: Case, wrapper: string) => {
      const ref = referenceValidate(c.bytes);
      if (c.valid !== undefined && c.valid !== ref.ok)
        oracleDisagrees.push(`${c.kind}: construction ${c.valid}, reference ${ref.ok ? 'valid' : ref.why}`);
      const valid = c.valid ?? ref.ok;
      const k = byKind.get(c.kind) ?? { valid: 0, invalid: 0 };
      k[valid ? 'valid' : 'invalid']++;
      byKind.set(c.kind, k);
      const input = WRAPPERS[wrapper](c.bytes, rng);
      let result: ReturnType<typeof readSafetensors> | undefined;
      try {
        result = readSafetensors(input, SOURCE);
      } catch (e) {
        if (!(e instanceof DeltaTuneError)) {
          totals.otherExceptions++;
          failures.push(`${c.kind}/${wrapper}: ${(e as Error)?.name}: ${(e as Error)?.message}`);
          return;
        }
        const lines = e.message.split('\n');
        if (lines.length !== 2 || !lines[0].includes(SOURCE) || !e.fix) badMessages.push(`${c.kind}: ${JSON.stringify(e.message)}`);
        if (valid) {
          totals.validRejected++;
          failures.push(`${c.kind}/${wrapper}: valid file rejected: ${lines[0]}`);
        } else totals.invalidRejected++;
        return;
      }
      if (!valid) {
        totals.invalidAccepted++;
        failures.push(`${c.kind}/${wrapper}: invalid file accepted${ref.ok ? '' : ` (${ref.why})`}`);
        return;
      }
      if (!ref.ok) throw new Error(`test bug: ${c.kind} valid by construction but reference says ${ref.why}`);
      const problem = compare(result.tensors, ref.tensors);
      if (problem) {
        totals.wrongValues++;
        failures.push(`${c.kind}/${wrapper}: ${problem}`);
      } else totals.validAccepted++;
    };

    const structured = Object.keys(STRUCTURED);
    const random = Object.keys(RANDOM);
    for (let f = 0; f < FILES; f++) {
      const spec = genValid(rng);
      const file = build(spec);
      for (const w of Object.keys(WRAPPERS)) run({ kind: 'valid', bytes: file, valid: true }, w);
      for (let m = 0; m < 3; m++) {
        const kind = pick(rng, random);
        run({ kind: `random:${kind}`, bytes: RANDOM[kind](file, rng) }, pick(rng, Object.keys(WRAPPERS)));
      }
      for (let m = 0; m < 2; m++) {
        const kind = pick(rng, structured);
        const c = STRUCTURED[kind](spec, rng);
        if (c) run({ kind, ...c }, pick(rng, Object.keys(WRAPPERS)));
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const cases = [...byKind.values()].reduce((a, k) => a + k.valid + k.invalid, 0);
    const kinds = [...byKind]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, k]) => `  ${kind}: ${k.valid} valid, ${k.invalid} invalid`);
    console.log(
      [
        `safetensors fuzz (seed 0x${SEED.toString(16)}, ${FILES} generated files): ${cases} cases in ${seconds.toFixed(2)} s`,
        `  ${JSON.stringify(totals)}`,
        ...kinds,
      ].join('\n'),
    );
    expect(oracleDisagrees.slice(0, 10)).toEqual([]);
    expect(failures.slice(0, 10)).toEqual([]);
    expect(badMessages.slice(0, 10)).toEqual([]);
    expect(totals.validRejected).toBe(0);
    expect(totals.invalidAccepted).toBe(0);
    expect(totals.otherExceptions).toBe(0);
    expect(totals.wrongValues).toBe(0);
    expect(cases).toBeGreaterThanOrEqual(5000);
    expect(totals.validAccepted).toBeGreaterThan(1000);
    expect(totals.invalidRejected).toBeGreaterThan(1000);
  });

  // Hand-built files for the regressions below.
  const file = (header: string | object, data: Uint8Array = new Uint8Array(0)) =>
    assemble(enc.encode(typeof header === 'string' ? header : JSON.stringify(header)), data);
  const expectRejected = (bytes: Uint8Array, pattern: RegExp) => {
    let err: unknown;
    try {
      readSafetensors(bytes, 'r.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DeltaTuneError);
    expect((err as Error).message).toMatch(pattern);
  };
  const f32 = (...xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

  it('reads F32 from a Node Buffer whose data section is not 4-byte aligned', () => {
    // 8 + 61 bytes of header puts the data at offset 69; Buffer#slice would not realign it.
    const header = JSON.stringify({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } });
    const padded = header + ' '.repeat(61 - header.length);
    const bytes = Buffer.from(file(padded, f32(1.5, -2, 3.25)));
    expect((bytes.byteOffset + 8 + 61) % 4).not.toBe(0);
    expect(Array.from(readSafetensors(bytes).tensors.get('w')!.data)).toEqual([1.5, -2, 3.25]);
    const odd = Buffer.concat([Buffer.alloc(3), file(header, f32(1.5, -2, 3.25))]).subarray(3);
    expect(Array.from(readSafetensors(odd).tensors.get('w')!.data)).toEqual([1.5, -2, 3.25]);
  });

  it('rejects overlapping tensors', () => {
    const h = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    expectRejected(file(h, f32(1, 2, 3)), /"b".*overlaps/);
    expectRejected(file({ a: h.a, c: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1, 2)), /overlaps/);
  });

  it('rejects a hole in the data and trailing bytes', () => {
    expectRejected(file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(1, 2)), /"a".*unused/);
    expectRejected(file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1, 2)), /4 bytes after the last tensor/);
  });

  it('rejects a header that is not an object', () => {
    for (const h of ['[]', '1', 'null', '"x"']) expectRejected(file(h), /r\.safetensors.*(does not start with|not a JSON object)/);
  });

  it('rejects a header that is not UTF-8', () => {
    const text = enc.encode('{"__metadata__":{"a":"xx"}}');
    text[20] = 0xff;
    expectRejected(assemble(text, new Uint8Array(0)), /not valid UTF-8/);
    expectRejected(assemble(concat(Uint8Array.of(0xef, 0xbb, 0xbf), enc.encode('{}')), new Uint8Array(0)), /does not start with/);
  });

  it('rejects negative and fractional shapes', () => {
    expectRejected(file({ w: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }), /"w".*invalid shape \[-1\]/);
    expectRejected(file({ w: { dtype: 'U8', shape: [2.5, 2], data_offsets: [0, 5] } }, new Uint8Array(5)), /"w".*invalid shape \[2\.5,2\]/);
  });

  it('rejects offsets given as strings', () => {
    expectRejected(file({ w: { dtype: 'F32', shape: [1], data_offsets: ['0', '4'] } }, f32(1)), /"w".*invalid data_offsets/);
  });

  it('rejects unsupported dtypes, oversized headers, and I64 values outside int32', () => {
    expectRejected(file({ w: { dtype: 'U16', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2)), /unsupported dtype U16/);
    expectRejected(assemble(enc.encode('{}'), new Uint8Array(0), 200_000_000n), /over the 100000000-byte limit/);
    const big = new Uint8Array(8);
    new DataView(big.buffer).setBigInt64(0, 2n ** 40n, true);
    expectRejected(file({ i: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, big), /"i".*outside the int32 range/);
  });

  it('accepts scalars, zero-element tensors and an empty file, and round-trips the writer', () => {
    const h = { s: { dtype: 'F32', shape: [], data_offsets: [0, 4] }, z: { dtype: 'F64', shape: [3, 0], data_offsets: [4, 4] } };
    const { tensors } = readSafetensors(file(h, f32(7)));
    expect(Array.from(tensors.get('s')!.data)).toEqual([7]);
    expect(tensors.get('z')!.shape).toEqual([3, 0]);
    expect(tensors.get('z')!.data.length).toBe(0);
    expect(readSafetensors(file({})).tensors.size).toBe(0);
    const written = writeSafetensors(new Map([['a', { dtype: 'int32', shape: [2], data: new Int32Array([5, -6]) }]]), { format: 'pt' });
    expect(readSafetensorsHeader(written).metadata).toEqual({ format: 'pt' });
    expect(Array.from(readSafetensors(written).tensors.get('a')!.data)).toEqual([5, -6]);
  });
});
