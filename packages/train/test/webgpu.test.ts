import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { attach } from '@deltatune/core';
import { loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { lora } from '@deltatune/lora';
import { limitDataset, train } from '@deltatune/train';
import { loadSpam } from '@deltatune/train/node';
import { probeWebgpu } from '../../../test-webgpu';

const missing = await probeWebgpu();
if (missing) console.log(`webgpu tests skipped: ${missing}`);

/** The first losses of one LoRA run (USE-lite, spam) on the backend active now. */
async function firstLosses(steps: number): Promise<{ losses: number[]; tensorCounts: number[] }> {
  const backbone = loadUseLite();
  const delta = attach(backbone, lora({ r: 8, alpha: 16, seed: 1 }));
  const tensorCounts: number[] = [];
  const result = await train({
    backbone,
    tokenizer: loadTokenizer('use-lite'),
    dataset: limitDataset(loadSpam(), { train: 64, validation: 16, test: 16 }),
    deltas: [delta],
    learningRate: 3e-3,
    batchSize: 8,
    maxLength: 32,
    steps,
    seed: 1,
    evalEvery: 0,
    onEvent: (e) => e.type === 'step' && tensorCounts.push(tf.memory().numTensors),
  });
  result.head!.dispose();
  delta.detach();
  backbone.dispose();
  return { losses: result.history.map((h) => h.loss), tensorCounts };
}

describe.skipIf(!!missing)('training on the webgpu backend', () => {
  it('gives the losses of wasm over the first steps, with a flat tensor count', async () => {
    await tf.setBackend('wasm');
    const onWasm = await firstLosses(5);
    await tf.setBackend('webgpu');
    const onWebgpu = await firstLosses(5);
    await tf.setBackend('wasm');
    const diffs = onWasm.losses.map((l, i) => Math.abs(l - onWebgpu.losses[i]));
    console.log(
      `wasm ${onWasm.losses.map((l) => l.toFixed(7)).join(' ')}\nwebgpu ${onWebgpu.losses.map((l) => l.toFixed(7)).join(' ')}\nmax |diff| ${Math.max(...diffs).toExponential(2)}`,
    );
    expect(onWebgpu.losses).toHaveLength(5);
    expect(Math.max(...diffs)).toBeLessThan(1e-4);
    // The losses move: the run trains, not just evaluates.
    expect(onWebgpu.losses[4]).toBeLessThan(onWebgpu.losses[0]);
    // Steady state: each step is reported while the next is queued, the last with none queued.
    expect(new Set(onWebgpu.tensorCounts.slice(1, -1)).size).toBe(1);
  });
});
