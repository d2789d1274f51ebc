import { DeltaTuneError } from './errors';

/**
 * A small reader and writer for the safetensors format (8-byte little-endian header length, JSON
 * header, raw little-endian data), the format of Hugging Face model folders and PEFT adapters.
 * Reading converts F16/BF16/F64 to float32 and I64 to int32, since tfjs computes in those.
 */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface RawTensor {
  readonly dtype: 'float32' | 'int32';
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
  /** The dtype as stored in the file. */
  readonly storedAs: SafetensorsDtype;
}

const BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

interface HeaderEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data_offsets: [number, number];
}

/** Parses the header only: names, dtypes, shapes and where each tensor's bytes are. */
export function readSafetensorsHeader(bytes: Uint8Array, source = 'safetensors file') {
  if (bytes.byteLength < 8) {
    throw new DeltaTuneError(`${source} is truncated: ${bytes.byteLength} bytes, shorter than the 8-byte header length`, 'write the file again; it was cut off');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.byteLength - 8) {
    throw new DeltaTuneError(
      `${source} is truncated or not safetensors: header says ${headerLength} bytes, file has ${bytes.byteLength - 8} after it`,
      'check the path points at a .safetensors file and that it was fully written',
    );
  }
  let header: Record<string, HeaderEntry | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new DeltaTuneError(`${source} has a corrupted header (not JSON: ${(e as Error).message})`, 'write the file again from its source');
  }
  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const metadata = (header.__metadata__ as Record<string, string> | undefined) ?? {};
  const entries = new Map<string, HeaderEntry>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as HeaderEntry;
    if (!e || !(e.dtype in BYTES) || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) {
      throw new DeltaTuneError(`${source}: tensor "${name}" has a corrupted header entry ${JSON.stringify(entry)}`, 'write the file again from its source');
    }
    const [begin, end] = e.data_offsets;
    const expected = e.shape.reduce((a, b) => a * b, 1) * BYTES[e.dtype];
    if (end > dataLength) {
      throw new DeltaTuneError(`${source} is truncated: tensor "${name}" ends at byte ${end} of the data, which has ${dataLength}`, 'write the file again; it was cut off');
    }
    if (end - begin !== expected || begin < 0) {
      throw new DeltaTuneError(`${source}: tensor "${name}" (${e.dtype} ${JSON.stringify(e.shape)}) should take ${expected} bytes, header gives ${end - begin}`, 'the file is corrupted; write it again');
    }
    entries.set(name, e);
  }
  return { entries, metadata, dataStart };
}

/** Reads every tensor (or those `names` lists) from a safetensors buffer. */
export function readSafetensors(bytes: Uint8Array, source = 'safetensors file', names?: ReadonlySet<string>) {
  const { entries, metadata, dataStart } = readSafetensorsHeader(bytes, source);
  const tensors = new Map<string, RawTensor>();
  for (const [name, e] of entries) {
    if (names && !names.has(name)) continue;
    const begin = dataStart + e.data_offsets[0];
    const end = dataStart + e.data_offsets[1];
    tensors.set(name, decode(bytes.subarray(begin, end), e.dtype, e.shape));
  }
  return { tensors, metadata };
}

function decode(raw: Uint8Array, dtype: SafetensorsDtype, shape: number[]): RawTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  // Typed arrays need aligned offsets; copy only when the file's layout does not give us that.
  const aligned = (size: number) => (raw.byteOffset % size === 0 ? raw : raw.slice());
  switch (dtype) {
    case 'F32': {
      const a = aligned(4);
      return { dtype: 'float32', shape, data: new Float32Array(a.buffer, a.byteOffset, n), storedAs: dtype };
    }
    case 'I32': {
      const a = aligned(4);
      return { dtype: 'int32', shape, data: new Int32Array(a.buffer, a.byteOffset, n), storedAs: dtype };
    }
    case 'F64': {
      const a = aligned(8);
      return { dtype: 'float32', shape, data: Float32Array.from(new Float64Array(a.buffer, a.byteOffset, n)), storedAs: dtype };
    }
    case 'I64': {
      const a = aligned(8);
      const src = new BigInt64Array(a.buffer, a.byteOffset, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return { dtype: 'int32', shape, data: out, storedAs: dtype };
    }
    case 'F16':
    case 'BF16': {
      const a = aligned(2);
      const src = new Uint16Array(a.buffer, a.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dtype === 'F16' ? halfToFloat(src[i]) : bf16ToFloat(src[i]);
      return { dtype: 'float32', shape, data: out, storedAs: dtype };
    }
    case 'I16':
    case 'I8':
    case 'U8':
    case 'BOOL': {
      const src = dtype === 'I16' ? new Int16Array(aligned(2).slice().buffer, 0, n) : dtype === 'I8' ? new Int8Array(raw.slice().buffer, 0, n) : raw;
      return { dtype: 'int32', shape, data: Int32Array.from(src as ArrayLike<number>), storedAs: dtype };
    }
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bf16ToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0];
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
}

/** Serialises tensors (in name order, as the Python writer does) with optional string metadata. */
export function writeSafetensors(tensors: ReadonlyMap<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const size = t.data.length * 4;
    header[name] = { dtype: t.dtype === 'float32' ? 'F32' : 'I32', shape: [...t.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length * 4), at);
    at += t.data.length * 4;
  }
  return out;
}
