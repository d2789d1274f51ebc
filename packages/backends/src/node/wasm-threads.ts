import { createRequire } from 'node:module';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';

/**
 * XNNPACK's matrix products on several threads in Node: tfjs's threaded-SIMD wasm build, which
 * tfjs turns off in Node (tensorflow/tfjs#3830) for three reasons this module works around while
 * the backend starts, and only then:
 * - its pthread workers are made from `blob:` URLs, which Node's `Worker` refuses: the worker
 *   becomes a `data:` module that loads the package's own worker script and main script from disk;
 * - it caps its pool at half of `os.cpus()` (a guess that every core has two hyperthreads), so a
 *   2-core machine got one thread: `os.cpus()` reports twice the asked-for count during start-up;
 * - its workers keep Node's event loop alive, so a command never exited: they are unref'd.
 * Products come out bit-identical to one thread (XNNPACK splits the output, not the sums).
 */

/** What tfjs-backend-wasm exports that this uses. */
interface WasmPackage {
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
}

interface EmscriptenWorker {
  unref(): void;
}

interface PThreads {
  unusedWorkers: EmscriptenWorker[];
  runningWorkers: EmscriptenWorker[];
}

const WASM_PRIORITY = 2;

/** The pthread worker's code: an ES module (a `data:` URL is loaded as one), so it makes its own `require`. */
function workerSource(packageJson: string): string {
  return `
import { createRequire } from 'node:module';
const require = createRequire(${JSON.stringify(packageJson)});
const { wasmWorkerContents } = require('./wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');
const mainScript = require.resolve('./wasm-out/tfjs-backend-wasm-threaded-simd.js');
// The worker script runs as a classic script with Node's CommonJS globals.
globalThis.require = require;
globalThis.__filename = mainScript;
// It is sent the main script as a Blob and loads it through a blob: URL; the file is the same code.
URL.createObjectURL = () => mainScript;
URL.revokeObjectURL = () => {};
// tfjs inlines the worker with its newlines escaped; the package's copy has them raw inside strings.
(0, eval)(wasmWorkerContents.replace(/\\n/g, '\\\\n'));
`;
}

/**
 * Makes the wasm backend, when it starts, run matrix products on `threads` threads (1: the
 * single-thread SIMD build, as tfjs does in Node). Call before `selectBackend`; a backend already
 * started keeps its threads. Returns false when tfjs-backend-wasm is not installed (selectBackend
 * then says so) or already started.
 */
export async function useWasmThreads(threads: number): Promise<boolean> {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`useWasmThreads: threads must be a positive integer, got ${threads}`);
  if (threads === 1) return true;
  let wasm: WasmPackage;
  try {
    wasm = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as WasmPackage;
  } catch {
    return false;
  }
  const factory = tf.findBackendFactory('wasm');
  if (!factory || tf.engine().registry.wasm) return false;
  const packageJson = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
  const workerUrl = new URL(`data:text/javascript,${encodeURIComponent(workerSource(packageJson))}`);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      const createObjectURL = URL.createObjectURL;
      const cpus = os.cpus;
      // tfjs passes its worker script as a Blob of this type; anything else goes to Node's own.
      URL.createObjectURL = (blob: Blob) =>
        blob.type === 'application/javascript' ? (workerUrl as unknown as string) : createObjectURL(blob);
      os.cpus = () => Array.from({ length: 2 * threads }, () => cpus()[0]);
      try {
        const backend = (await factory()) as tf.KernelBackend & { wasm: { PThread?: PThreads } };
        const pool = backend.wasm.PThread;
        if (pool) for (const w of [...pool.unusedWorkers, ...pool.runningWorkers]) w.unref();
        return backend;
      } finally {
        URL.createObjectURL = createObjectURL;
        os.cpus = cpus;
      }
    },
    WASM_PRIORITY,
  );
  return true;
}

/** Threads the started wasm backend computes products on (1 before it starts or without threads). */
export async function wasmThreads(): Promise<number> {
  if (!tf.engine().registry.wasm) return 1;
  const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as WasmPackage;
  return Math.max(1, wasm.getThreadsCount());
}
