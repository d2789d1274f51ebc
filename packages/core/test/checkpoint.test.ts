import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { decodeCheckpoint, encodeCheckpoint, readSafetensors, validateTensors, writeSafetensors } from '@deltatune/core';

describe('safetensors and delta checkpoints', () => {
  it('round-trips names, shapes, dtypes and values', async () => {
    const tensors = new Map([
      [
        'b.weight',
        tf.tensor2d([
          [1.5, -2],
          [3.25, 4],
        ]),
      ],
      ['a.ids', tf.tensor1d([1, 2, 3], 'int32')],
    ]);
    const files = await encodeCheckpoint({ config: { method: 'x', r: 2 }, tensors });
    const back = decodeCheckpoint(files['adapter_config.json'], files['adapter_model.safetensors']);
    expect(back.config).toEqual({ method: 'x', r: 2 });
    expect(back.tensors.get('b.weight')!.arraySync()).toEqual([
      [1.5, -2],
      [3.25, 4],
    ]);
    expect(back.tensors.get('a.ids')!.dtype).toBe('int32');
    expect(back.tensors.get('a.ids')!.arraySync()).toEqual([1, 2, 3]);
    // data starts 8-byte aligned, as the Python writer does
    const len = Number(new DataView(files['adapter_model.safetensors'].buffer).getBigUint64(0, true));
    expect((8 + len) % 8).toBe(0);
  });

  it('reads F16 and BF16 as float32', () => {
    const header = JSON.stringify({
      h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
    });
    const bytes = new Uint8Array(8 + header.length + 6);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    const data = new DataView(bytes.buffer, 8 + header.length);
    data.setUint16(0, 0x3c00, true); // 1.0
    data.setUint16(2, 0xc000, true); // -2.0
    data.setUint16(4, 0x4049, true); // bf16 3.140625
    const { tensors } = readSafetensors(bytes);
    expect(Array.from(tensors.get('h')!.data)).toEqual([1, -2]);
    expect(tensors.get('b')!.data[0]).toBeCloseTo(3.140625, 6);
  });

  it('a truncated file is a clear error naming the cut', () => {
    const bytes = writeSafetensors(new Map([['w', { dtype: 'float32', shape: [4], data: new Float32Array([1, 2, 3, 4]) }]]));
    expect(() => readSafetensors(bytes.slice(0, bytes.length - 3), 'adapter_model.safetensors')).toThrow(
      /truncated: tensor "w" ends at byte 16 of the data, which has 13/,
    );
    expect(() => readSafetensors(bytes.slice(0, 5), 'x.safetensors')).toThrow(/truncated: 5 bytes/);
    expect(() => readSafetensors(bytes.slice(0, 20), 'x.safetensors')).toThrow(/truncated or not safetensors/);
  });

  it('a corrupted header is a clear error', () => {
    const bytes = writeSafetensors(new Map([['w', { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) }]]));
    const broken = bytes.slice();
    broken[9] = 0x7b; // '{' where '"' stood: no longer JSON
    expect(() => readSafetensors(broken, 'f.safetensors')).toThrow(/corrupted header \(not JSON/);
    const lying = new TextEncoder().encode(JSON.stringify({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }));
    const file = new Uint8Array(8 + lying.length + 8);
    new DataView(file.buffer).setBigUint64(0, BigInt(lying.length), true);
    file.set(lying, 8);
    expect(() => readSafetensors(file, 'f.safetensors')).toThrow(/should take 12 bytes, header gives 8/);
  });

  it('validation lists every missing, unexpected and misshapen tensor', () => {
    const expected = new Map<string, number[]>([
      ['a', [2, 3]],
      ['b', [4]],
      ['c', [1]],
    ]);
    const actual = new Map([
      ['a', { shape: [3, 2] }],
      ['c', { shape: [1] }],
      ['z', { shape: [1] }],
    ]);
    expect(() => validateTensors(expected, actual, 'lora delta "x"')).toThrow(
      /missing 1: b; unexpected 1: z; a has shape \[3,2\], expected \[2,3\]/,
    );
  });
});
