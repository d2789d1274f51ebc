import * as tf from '@tensorflow/tfjs-core';
import { DeltaTuneError } from './errors';
import { installWasmMatMul } from './wasm-matmul';
import { installWasmUnsortedSegmentSum } from './wasm-segment-sum';

export type BackendChoice = 'auto' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendChoice[] = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

/** How optional packages are loaded; tests replace it to simulate a missing package. */
export type PackageLoader = (specifier: string) => Promise<any>;

// A computed specifier keeps bundlers from resolving optional packages at build time.
const defaultLoader: PackageLoader = (specifier) => import(/* @vite-ignore */ specifier);

const INSTALL: Record<Exclude<BackendChoice, 'auto'>, string> = {
  tensorflow: 'npm install @tensorflow/tfjs-node-gpu (CUDA 11.2 + cuDNN 8.1) or @tensorflow/tfjs-node (CPU)',
  webgpu: 'npm install @tensorflow/tfjs-backend-webgpu, and in Node also the `webgpu` package (Dawn)',
  wasm: 'npm install @tensorflow/tfjs-backend-wasm',
  cpu: 'npm install @tensorflow/tfjs-backend-cpu',
};

function missing(name: Exclude<BackendChoice, 'auto'>, why: string, fix = INSTALL[name]): DeltaTuneError {
  return new DeltaTuneError(`backend "${name}" is not available: ${why}`, fix);
}

const NO_ADAPTER_FIX =
  'WebGPU needs a GPU and its Vulkan driver (Linux: the Vulkan loader and the vendor ICD, VK_DRIVER_FILES pointing at it); ' +
  'without a GPU, Mesa >= 24 lavapipe gives a software adapter (Debian 12: scripts/install-lavapipe.sh), or use --backend wasm';

async function tryLoad(load: PackageLoader, specifier: string): Promise<any | undefined> {
  try {
    return await load(specifier);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /Cannot find (module|package)/.test(String(e))) return undefined;
    throw e;
  }
}

async function activate(name: string): Promise<boolean> {
  try {
    return (await tf.setBackend(name)) && (await tf.ready(), tf.getBackend() === name);
  } catch {
    return false;
  }
}

type Loader = (load: PackageLoader, automatic: boolean) => Promise<void>;

interface AdapterInfo {
  readonly isFallbackAdapter?: boolean;
  readonly description?: string;
  readonly device?: string;
}

const loaders: Record<Exclude<BackendChoice, 'auto'>, Loader> = {
  async tensorflow(load) {
    const mod = (await tryLoad(load, '@tensorflow/tfjs-node-gpu')) ?? (await tryLoad(load, '@tensorflow/tfjs-node'));
    if (!mod) throw missing('tensorflow', 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed');
    if (!(await activate('tensorflow'))) throw missing('tensorflow', 'the tfjs-node binding did not initialise (libtensorflow or CUDA not found)');
  },
  async webgpu(load, automatic) {
    const g = globalThis as { navigator?: { gpu?: unknown } };
    if (!g.navigator?.gpu) {
      const dawn = await tryLoad(load, 'webgpu');
      if (!dawn) throw missing('webgpu', 'no navigator.gpu and the `webgpu` (Dawn) package is not installed');
      const { create, globals } = dawn.default ?? dawn;
      Object.assign(globalThis, globals);
      const nav = (g.navigator ??= {} as { gpu?: unknown });
      Object.defineProperty(nav, 'gpu', { value: create([]), configurable: true });
    }
    const adapter = await (g.navigator!.gpu as { requestAdapter(): Promise<{ info?: AdapterInfo } | null> }).requestAdapter();
    if (!adapter) throw missing('webgpu', 'no WebGPU adapter was found (no GPU, or its Vulkan driver is not loaded)', NO_ADAPTER_FIX);
    // A software adapter (Mesa's llvmpipe) is exact but far slower than wasm: fine when asked for
    // by name (tests, kernel checks), never picked by `auto`.
    if (automatic && adapter.info?.isFallbackAdapter) {
      throw missing('webgpu', `the only adapter is a software one (${adapter.info.description || adapter.info.device || 'fallback'})`, 'name it to use it anyway: --backend webgpu');
    }
    if (!(await tryLoad(load, '@tensorflow/tfjs-backend-webgpu'))) throw missing('webgpu', '@tensorflow/tfjs-backend-webgpu is not installed');
    if (!(await activate('webgpu'))) throw missing('webgpu', 'tfjs could not start the webgpu backend');
  },
  async wasm(load) {
    if (!(await tryLoad(load, '@tensorflow/tfjs-backend-wasm'))) throw missing('wasm', '@tensorflow/tfjs-backend-wasm is not installed');
    if (!(await activate('wasm'))) throw missing('wasm', 'the wasm module failed to load');
    installWasmMatMul();
    installWasmUnsortedSegmentSum();
  },
  async cpu(load) {
    if (!(await tryLoad(load, '@tensorflow/tfjs-backend-cpu'))) throw missing('cpu', '@tensorflow/tfjs-backend-cpu is not installed');
    if (!(await activate('cpu'))) throw missing('cpu', 'tfjs could not start the cpu backend');
  },
};

/**
 * Selects and initialises a tfjs backend. `auto` takes `tensorflow` when tfjs-node(-gpu) is
 * installed, else `webgpu` when a hardware adapter is found, else `wasm`. Naming an unavailable backend
 * is an error that says what to install. Returns the backend now active.
 */
export async function selectBackend(
  choice: BackendChoice = 'auto',
  load: PackageLoader = defaultLoader,
  /** What `auto` tries, in order, before `cpu`: a caller that knows there is no GPU can leave webgpu out. */
  autoOrder: ReadonlyArray<'tensorflow' | 'webgpu' | 'wasm'> = ['tensorflow', 'webgpu', 'wasm'],
): Promise<string> {
  if (!BACKENDS.includes(choice)) {
    throw new DeltaTuneError(`unknown backend "${choice}"`, `use one of ${BACKENDS.join(', ')}`);
  }
  if (choice !== 'auto') {
    await loaders[choice](load, false);
    return tf.getBackend();
  }
  for (const candidate of autoOrder) {
    try {
      await loaders[candidate](load, true);
      return tf.getBackend();
    } catch (e) {
      if (!(e instanceof DeltaTuneError)) throw e;
    }
  }
  await loaders.cpu(load, true);
  return tf.getBackend();
}
