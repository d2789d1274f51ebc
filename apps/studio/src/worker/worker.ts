/// <reference lib="webworker" />
// The training worker: the page stays responsive while tfjs computes here.
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import '@tensorflow/tfjs-backend-webgpu';
import { selectBackend } from '@deltatune/backends';
import { DeltaTuneError, registerMethod } from '@deltatune/core';
// The .wasm binaries are not JS: a bundler copies them only when asked, and tfjs fetches them by URL.
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { STUDIO_METHODS } from '../methods';
import type { BackendRequest, PageToWorker, WorkerToPage } from '../protocol';
import { StudioSession } from './session';

declare const self: DedicatedWorkerGlobalScope;

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});
for (const m of STUDIO_METHODS) registerMethod(m);

const post = (message: WorkerToPage, transfer: Transferable[] = []) => self.postMessage(message, transfer);
const session = new StudioSession(post);
let backend: string | undefined;

/** The backend, chosen once per worker: tensors cannot move between backends mid-session (the page starts a new worker to switch). */
async function ensureBackend(request: BackendRequest): Promise<string> {
  if (backend) return backend;
  backend = await selectBackend(request, undefined, ['webgpu', 'wasm']);
  const threads =
    backend === 'wasm' && self.crossOriginIsolated ? ' (threaded SIMD binary available: the page is cross-origin isolated)' : '';
  const detail =
    backend === 'webgpu'
      ? 'WebGPU: training on this machine’s GPU'
      : `wasm${threads}: ${request === 'wasm' ? 'as asked' : 'this browser has no usable WebGPU adapter'}`;
  post({ type: 'backend', name: backend, detail });
  return backend;
}

function report(request: PageToWorker['type'], e: unknown): void {
  const err = e as Error;
  const message = (err?.message ?? String(e)).split('\n')[0];
  post({ type: 'error', request, message, fix: e instanceof DeltaTuneError ? e.fix : undefined });
}

// One request at a time (train, predict, export), in order; `stop` acts at once.
let queue: Promise<void> = Promise.resolve();
self.onmessage = (event: MessageEvent<PageToWorker>) => {
  const msg = event.data;
  if (msg.type === 'stop') return session.stop();
  queue = queue.then(async () => {
    try {
      if (msg.type === 'train') await session.train(msg, await ensureBackend(msg.backend));
      else if (msg.type === 'predict') post({ type: 'prediction', id: msg.id, probabilities: await session.predict(msg.text) });
      else if (msg.type === 'export') {
        const { fileName, zip } = await session.exportZip();
        post({ type: 'exported', fileName, zip }, [zip.buffer]);
      }
    } catch (e) {
      report(msg.type, e);
    }
  });
};
