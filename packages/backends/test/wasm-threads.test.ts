// The wasm backend on two threads in Node (useWasmThreads): it starts, reports 2 threads, gives
// bit-identical products, gradients and a pretrained model's forward pass to one thread, and lets
// the process exit on its own. Each side runs in a fresh process: a backend starts once per process.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

// Seeded inputs; products of the shapes a training step runs (2-D, batched, transposed), their
// gradients, and USE-lite's pooled output for a batch: printed as one sha256 over the float bits.
const script = (threads: number) => `
  import * as tf from '@tensorflow/tfjs-core';
  import { createHash } from 'node:crypto';
  import { selectBackend } from '@deltatune/backends';
  import { useWasmThreads, wasmThreads } from '@deltatune/backends/node';
  import { loadUseLite } from '@deltatune/models/node';
  const asked = await useWasmThreads(${threads});
  const backend = await selectBackend('wasm');
  const hash = createHash('sha256');
  const add = (t) => { hash.update(Buffer.from(t.dataSync().buffer)); t.dispose(); };
  const a = tf.randomNormal([256, 384], 0, 1, 'float32', 1);
  const b = tf.randomNormal([384, 320], 0, 1, 'float32', 2);
  const c = tf.randomNormal([4, 64, 96], 0, 1, 'float32', 3);
  add(tf.matMul(a, b));
  add(tf.matMul(b, a, true, true));
  add(tf.matMul(c, c, false, true));
  const [ga, gb] = tf.grads((x, y) => tf.sum(tf.relu(tf.matMul(x, y))))([a, b]);
  add(ga); add(gb);
  const model = loadUseLite();
  const ids = tf.tensor2d(Array.from({ length: 8 * 64 }, (_, i) => (i * 37) % 8000 + 1), [8, 64], 'int32');
  const mask = tf.ones([8, 64], 'int32');
  const out = model.forward({ inputIds: ids, attentionMask: mask });
  add(out.pooled);
  console.log(JSON.stringify({ asked, backend, threads: await wasmThreads(), sha256: hash.digest('hex') }));
`;

function run(threads: number) {
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(threads)], {
    cwd: ROOT,
    encoding: 'utf8',
    // The script ends without process.exit: a pthread worker left holding the event loop would hang here.
    timeout: 60_000,
  });
  expect(r.signal, `the ${threads}-thread process did not exit on its own: ${r.stderr}`).toBeNull();
  expect(r.status, r.stderr).toBe(0);
  return { ...JSON.parse(r.stdout.trim().split('\n').at(-1)!), seconds: (Date.now() - started) / 1000 };
}

describe('wasm on several threads (Node)', () => {
  it('computes on 2 threads, bit-identical to 1, and exits by itself', () => {
    const one = run(1);
    const two = run(2);
    expect(one).toMatchObject({ asked: true, backend: 'wasm', threads: 1 });
    expect(two).toMatchObject({ asked: true, backend: 'wasm', threads: 2 });
    expect(two.sha256).toBe(one.sha256);
    // A hash of nothing would also be equal: the outputs were really hashed.
    expect(one.sha256).not.toBe(createHash('sha256').digest('hex'));
  }, 150_000);
});
