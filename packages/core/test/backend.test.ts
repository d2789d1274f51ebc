import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend, type PackageLoader } from '@deltatune/core';

const absent: PackageLoader = async (specifier) => {
  const e = new Error(`Cannot find package '${specifier}'`) as Error & { code: string };
  e.code = 'ERR_MODULE_NOT_FOUND';
  throw e;
};

describe('backend selection', () => {
  it('naming a backend that is not installed says what to install', async () => {
    await expect(selectBackend('tensorflow', absent)).rejects.toThrow(/backend "tensorflow" is not available: neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node is installed[\s\S]*fix: npm install @tensorflow\/tfjs-node-gpu/);
    await expect(selectBackend('webgpu', absent)).rejects.toThrow(/backend "webgpu" is not available[\s\S]*npm install @tensorflow\/tfjs-backend-webgpu/);
    await expect(selectBackend('wasm', absent)).rejects.toThrow(/npm install @tensorflow\/tfjs-backend-wasm/);
  });

  it('rejects an unknown name with the list of choices', async () => {
    await expect(selectBackend('cuda' as never)).rejects.toThrow(/unknown backend "cuda"[\s\S]*auto, webgpu, tensorflow, wasm, cpu/);
  });

  it('auto falls back past tensorflow and webgpu (absent here) to wasm', async () => {
    const realImport: PackageLoader = (s) => import(s);
    expect(await selectBackend('auto', realImport)).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('cpu and wasm are selectable by name', async () => {
    expect(await selectBackend('cpu')).toBe('cpu');
    expect(await selectBackend('wasm')).toBe('wasm');
  });
});
