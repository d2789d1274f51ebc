import { DeltaTuneError } from './errors';

/**
 * A small reader and writer for the safetensors format (8-byte little-endian header length, JSON
 * header, raw little-endian data), the format of Hugging Face model folders and PEFT adapters.
 * Reading converts F16/BF16/F64 to float32 and I64 to int32, since tfjs computes in those.
 *
 * The reader is a strict validator, following the reference implementation (huggingface/safetensors,
 * `read_metadata` and `validate`): a file is read only if every byte of it is accounted for, so a
 * corrupted or hostile file is rejected with a DeltaTuneError instead of yielding wrong tensors.
 */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface RawTensor {
  readonly dtype: 'float32' | 'int32';
  readonly shape: readonly number[];
  /**
   * The values. F32/I32 data the file aligns is a view into the file's bytes. F16, BF16 and F64 (and
   * unaligned F32/I32) are decoded each time `data` is read, and not kept: a model's map of tensors
   * then holds the file, not the file plus a float32 copy of every tensor. Read it once per use.
   */
  readonly data: Float32Array | Int32Array;
  /** The dtype as stored in the file. */
  readonly storedAs: SafetensorsDtype;
}

const BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

// Dtypes the format defines but tfjs has no use for: named so the error says "unsupported", not "corrupted".
const OTHER_FORMAT_DTYPES = new Set(['U16', 'U32', 'U64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'C64']);

// The reference reader's limit: a longer header is far more likely corruption than a real file.
const MAX_HEADER_BYTES = 100_000_000;

interface HeaderEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data_offsets: [number, number];
}

const REWRITE = 'the file is corrupted or was not written by a safetensors writer; write it again from its source';

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// Names come from the file, so quote them: a newline or quote in a name must not break the one-line message.
const quote = (name: string) => JSON.stringify(name);

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseEntry(source: string, name: string, entry: unknown, dataLength: number): HeaderEntry {
  const where = `${source}: tensor ${quote(name)}`;
  if (!isPlainObject(entry)) {
    throw new DeltaTuneError(`${where} has a header entry that is not an object: ${brief(entry)}`, REWRITE);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(BYTES, dtype)) {
    if (typeof dtype === 'string' && OTHER_FORMAT_DTYPES.has(dtype)) {
      throw new DeltaTuneError(
        `${where} has unsupported dtype ${dtype}`,
        `convert the tensor to one of ${Object.keys(BYTES).join(', ')} before loading it with deltatune`,
      );
    }
    throw new DeltaTuneError(`${where} has an unknown dtype ${brief(dtype)}`, REWRITE);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new DeltaTuneError(`${where} has an invalid shape ${brief(shape)} (must be an array of non-negative integers)`, REWRITE);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1]) || offsets[0] > offsets[1]) {
    throw new DeltaTuneError(`${where} has invalid data_offsets ${brief(offsets)} (must be [begin, end] with 0 <= begin <= end)`, REWRITE);
  }
  // -0 passes the checks above; normalise it so shapes and offsets compare and print as plain 0.
  const dims = shape.map((d: number) => d + 0);
  const [begin, end] = [offsets[0] + 0, offsets[1] + 0];
  // Multiply step by step, as the reference does with checked_mul, so an overflow is caught before precision is lost.
  let count = 1;
  for (const d of dims) {
    count *= d;
    if (count > Number.MAX_SAFE_INTEGER) {
      throw new DeltaTuneError(`${where} has shape ${JSON.stringify(dims)}, whose element count overflows`, REWRITE);
    }
  }
  const expected = count * BYTES[dtype as SafetensorsDtype];
  if (expected > Number.MAX_SAFE_INTEGER) {
    throw new DeltaTuneError(`${where} has shape ${JSON.stringify(dims)}, whose byte size overflows`, REWRITE);
  }
  if (end > dataLength) {
    throw new DeltaTuneError(
      `${source} is truncated: tensor ${quote(name)} ends at byte ${end} of the data, which has ${dataLength}`,
      'write the file again; it was cut off',
    );
  }
  if (end - begin !== expected) {
    throw new DeltaTuneError(
      `${where} (${dtype} ${JSON.stringify(dims)}) should take ${expected} bytes, header gives ${end - begin} ([${begin}, ${end}])`,
      REWRITE,
    );
  }
  return { dtype: dtype as SafetensorsDtype, shape: dims, data_offsets: [begin, end] };
}

/** A short, one-line rendering of a header value for an error message. */
function brief(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? 'undefined' : JSON.stringify(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Parses and validates the header: names, dtypes, shapes and where each tensor's bytes are. */
export function readSafetensorsHeader(bytes: Uint8Array, source = 'safetensors file') {
  if (!(bytes instanceof Uint8Array)) {
    throw new DeltaTuneError(`${source}: expected the file's bytes as a Uint8Array or Buffer, got ${typeof bytes}`, 'pass the file bytes');
  }
  if (bytes.byteLength < 8) {
    throw new DeltaTuneError(
      `${source} is truncated: ${bytes.byteLength} bytes, shorter than the 8-byte header length`,
      'write the file again; it was cut off',
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new DeltaTuneError(
      `${source} is not safetensors or is corrupted: header length ${declared} bytes is over the ${MAX_HEADER_BYTES}-byte limit`,
      'check the path points at a .safetensors file',
    );
  }
  const headerLength = Number(declared);
  if (headerLength > bytes.byteLength - 8) {
    throw new DeltaTuneError(
      `${source} is truncated or not safetensors: header says ${headerLength} bytes, file has ${bytes.byteLength - 8} after it`,
      'check the path points at a .safetensors file and that it was fully written',
    );
  }
  // Checked on the raw byte, so a byte-order mark (which TextDecoder would otherwise strip) is rejected too.
  if (headerLength === 0 || bytes[8] !== 0x7b) {
    throw new DeltaTuneError(`${source} has a corrupted header: it does not start with "{"`, 'check the path is a .safetensors file');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw new DeltaTuneError(`${source} has a corrupted header: it is not valid UTF-8`, REWRITE);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new DeltaTuneError(`${source} has a corrupted header (not JSON: ${(e as Error).message.replace(/\s+/g, ' ')})`, REWRITE);
  }
  if (!isPlainObject(header)) {
    throw new DeltaTuneError(`${source} has a corrupted header: it is ${brief(header)}, not a JSON object`, REWRITE);
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, HeaderEntry>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      // The reference reads __metadata__ as an optional map, so null means "none".
      if (entry === null) continue;
      if (!isPlainObject(entry)) {
        throw new DeltaTuneError(`${source}: __metadata__ is ${brief(entry)}, not an object of strings`, REWRITE);
      }
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') {
          throw new DeltaTuneError(`${source}: __metadata__ key ${quote(k)} has a non-string value ${brief(v)}`, REWRITE);
        }
        metadata[k] = v;
      }
      continue;
    }
    entries.set(name, parseEntry(source, name, entry, dataLength));
  }
  // The reference's rule: the data section must be entirely indexed, without holes or overlaps. Sorting by
  // (begin, end) puts empty tensors before a non-empty one starting at the same byte.
  const ranges = [...entries].sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
  let at = 0;
  for (const [name, e] of ranges) {
    const [begin, end] = e.data_offsets;
    if (begin !== at) {
      const what = begin < at ? `overlaps the previous tensor (which ends at byte ${at})` : `leaves bytes ${at}..${begin} unused`;
      throw new DeltaTuneError(`${source}: tensor ${quote(name)} at data bytes [${begin}, ${end}] ${what}`, REWRITE);
    }
    at = end;
  }
  if (at !== dataLength) {
    throw new DeltaTuneError(
      `${source} has ${dataLength - at} bytes after the last tensor's data (the tensors cover ${at} of ${dataLength})`,
      'the file has trailing bytes or a header that lost a tensor; write it again from its source',
    );
  }
  return { entries, metadata, dataStart };
}

/** Reads every tensor (or those `names` lists) from a safetensors buffer. The whole file is validated either way. */
export function readSafetensors(bytes: Uint8Array, source = 'safetensors file', names?: ReadonlySet<string>) {
  const { entries, metadata, dataStart } = readSafetensorsHeader(bytes, source);
  const tensors = new Map<string, RawTensor>();
  for (const [name, e] of entries) {
    if (names && !names.has(name)) continue;
    const begin = dataStart + e.data_offsets[0];
    const end = dataStart + e.data_offsets[1];
    tensors.set(name, decode(bytes.subarray(begin, end), e.dtype, e.shape, source, name));
  }
  return { tensors, metadata };
}

function decode(raw: Uint8Array, dtype: SafetensorsDtype, shape: number[], source: string, name: string): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  // Typed arrays need aligned offsets, and the format does not pad the data to any alignment. Copy only when
  // the file's layout does not give us that; `new Uint8Array(raw)` copies into a fresh buffer at offset 0
  // (Buffer#slice would not: on a Node Buffer it returns a view at the same unaligned offset).
  const aligned = (size: number) => (raw.byteOffset % size === 0 ? raw : new Uint8Array(raw));
  const eager = (data: Float32Array | Int32Array): RawTensor => ({
    dtype: data instanceof Float32Array ? 'float32' : 'int32',
    shape,
    data,
    storedAs: dtype,
  });
  // An own enumerable getter (not a prototype one), so `{ ...t }` still copies `data`.
  const lazy = (kind: 'float32' | 'int32', values: () => Float32Array | Int32Array): RawTensor => ({
    dtype: kind,
    shape,
    get data() {
      return values();
    },
    storedAs: dtype,
  });
  switch (dtype) {
    case 'F32':
    case 'I32': {
      const view = (a: Uint8Array) =>
        dtype === 'F32' ? new Float32Array(a.buffer, a.byteOffset, n) : new Int32Array(a.buffer, a.byteOffset, n);
      const kind = dtype === 'F32' ? 'float32' : 'int32';
      return raw.byteOffset % 4 === 0 ? eager(view(raw)) : lazy(kind, () => view(new Uint8Array(raw)));
    }
    case 'F64':
      return lazy('float32', () => {
        const a = aligned(8);
        return Float32Array.from(new Float64Array(a.buffer, a.byteOffset, n));
      });
    case 'I64': {
      // Decoded now, not lazily: a value outside int32 must fail the read, not some later use.
      const a = aligned(8);
      const src = new BigInt64Array(a.buffer, a.byteOffset, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i];
        // tfjs has no int64; wrapping a large value would silently change it, so refuse instead.
        if (v < -2147483648n || v > 2147483647n) {
          throw new DeltaTuneError(
            `${source}: tensor ${quote(name)} (I64) holds ${v} at index ${i}, outside the int32 range tfjs supports`,
            'store the tensor as I32, or as F32/F64 if it holds large values',
          );
        }
        out[i] = Number(v);
      }
      return eager(out);
    }
    case 'F16':
    case 'BF16':
      return lazy('float32', () => {
        const a = aligned(2);
        const src = new Uint16Array(a.buffer, a.byteOffset, n);
        const out = new Float32Array(n);
        if (dtype === 'BF16') {
          // bfloat16 is the top half of a float32: shift the bits into place.
          const bits = new Uint32Array(out.buffer);
          for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
        } else for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]);
        return out;
      });
    case 'I16': {
      const a = aligned(2);
      return eager(Int32Array.from(new Int16Array(a.buffer, a.byteOffset, n)));
    }
    case 'I8':
      return eager(Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, n)));
    case 'U8':
    case 'BOOL':
      return eager(Int32Array.from(raw));
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export interface TensorToWrite {
  readonly dtype: 'float32' | 'int32';
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
  /**
   * How to store it (default F32 / I32). float32 data: F32, F64, F16 or BF16, rounded to nearest even
   * as torch's `.to(torch.float16 / torch.bfloat16)` does (NaN stays NaN, too large becomes infinity).
   * int32 data: I32, I64, I16, I8, U8 or BOOL; a value the dtype cannot hold is an error.
   */
  readonly writeAs?: SafetensorsDtype;
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set(['F64', 'F32', 'F16', 'BF16']);

/** The dtype a tensor is written as, checked against its data. */
function storedDtype(name: string, t: TensorToWrite): SafetensorsDtype {
  const as = t.writeAs ?? (t.dtype === 'float32' ? 'F32' : 'I32');
  if (!Object.prototype.hasOwnProperty.call(BYTES, as) || FLOAT_DTYPES.has(as) !== (t.dtype === 'float32')) {
    throw new DeltaTuneError(
      `cannot write tensor ${quote(name)} (${t.dtype}) as ${String(as)}`,
      t.dtype === 'float32' ? 'write float32 data as F32, F64, F16 or BF16' : 'write int32 data as I32, I64, I16, I8, U8 or BOOL',
    );
  }
  return as;
}

/**
 * Serialises tensors with optional string metadata, laid out as the reference writer does: by
 * dtype size (largest first), then by name, so every tensor starts at a multiple of its element
 * size and readers can view it without copying. Each tensor's `data` is read once.
 */
export function writeSafetensors(tensors: ReadonlyMap<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const plan = [...tensors].map(([name, t]) => {
    const dtype = storedDtype(name, t);
    const count = t.shape.reduce((a, b) => a * b, 1);
    return { name, t, dtype, count, size: count * BYTES[dtype] };
  });
  plan.sort((a, b) => BYTES[b.dtype] - BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const p of plan) {
    header[p.name] = { dtype: p.dtype, shape: [...p.t.shape], data_offsets: [offset, offset + p.size] };
    offset += p.size;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const p of plan) {
    const data = p.t.data;
    if (data.length !== p.count) {
      throw new DeltaTuneError(
        `cannot write tensor ${quote(p.name)}: shape ${JSON.stringify(p.t.shape)} holds ${p.count} values, its data has ${data.length}`,
        'pass data whose length is the product of the shape',
      );
    }
    encode(data, p.dtype, out, at, p.name);
    at += p.size;
  }
  return out;
}

/** Writes `data` as `dtype` into `out` at byte `at` (aligned to the dtype's size, by the layout above). */
function encode(data: Float32Array | Int32Array, dtype: SafetensorsDtype, out: Uint8Array, at: number, name: string): void {
  const n = data.length;
  switch (dtype) {
    case 'F32':
    case 'I32':
      out.set(new Uint8Array(data.buffer, data.byteOffset, n * 4), at);
      return;
    case 'F64':
      new Float64Array(out.buffer, at, n).set(data);
      return;
    case 'BF16':
    case 'F16': {
      const bits = new Uint32Array(data.buffer, data.byteOffset, n);
      const dst = new Uint16Array(out.buffer, at, n);
      const convert = dtype === 'BF16' ? floatBitsToBf16 : floatBitsToHalf;
      for (let i = 0; i < n; i++) dst[i] = convert(bits[i]);
      return;
    }
    case 'I64': {
      // Little-endian int64: the int32 value, then its sign extension.
      const words = new Int32Array(out.buffer, at, 2 * n);
      for (let i = 0; i < n; i++) {
        words[2 * i] = data[i];
        words[2 * i + 1] = data[i] < 0 ? -1 : 0;
      }
      return;
    }
    case 'I16':
    case 'I8':
    case 'U8':
    case 'BOOL': {
      const [lo, hi] = { I16: [-32768, 32767], I8: [-128, 127], U8: [0, 255], BOOL: [0, 1] }[dtype];
      for (let i = 0; i < n; i++) {
        if (data[i] < lo || data[i] > hi) {
          throw new DeltaTuneError(
            `cannot write tensor ${quote(name)} as ${dtype}: it holds ${data[i]} at index ${i}, outside ${lo}..${hi}`,
            'write it as I32 (or I64)',
          );
        }
      }
      if (dtype === 'I16') new Int16Array(out.buffer, at, n).set(data);
      else if (dtype === 'I8') new Int8Array(out.buffer, at, n).set(data);
      else out.set(data, at);
      return;
    }
  }
}

/**
 * float32 bits to bfloat16 bits, rounded to nearest even: c10::BFloat16's round_to_nearest_even
 * (add 0x7fff plus the lowest kept bit, keep the top half; NaN becomes 0x7fc0). The sum stays under
 * 2^32 because the largest non-NaN pattern is -infinity, 0xff800000.
 */
function floatBitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** float32 bits to IEEE half bits, rounded to nearest even (subnormals included); NaN keeps its sign, as fp16_ieee_from_fp32_value does. */
function floatBitsToHalf(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | (mantissa ? 0x7e00 : 0x7c00);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // A half subnormal (or zero): value / 2^-24, rounded. Below 2^-25 everything rounds to zero.
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let m = full >>> shift;
    if (rest > halfway || (rest === halfway && m & 1)) m++;
    return sign | m; // m may round up to 0x400: the smallest normal, which is its encoding too
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa moves to the next exponent, and from the largest finite to infinity: both right.
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}
