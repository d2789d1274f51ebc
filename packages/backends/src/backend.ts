import * as tf from '@tensorflow/tfjs-core';
import { DeltaTuneError } from '@deltatune/core';
import { installWasmGather } from './wasm-gather';
import { installWasmIdentity } from './wasm-identity';
import { installWasmMatMul } from './wasm-matmul';
import { installWasmLeadingSum } from './wasm-sum';
import { installWasmUnsortedSegmentSum } from './wasm-segment-sum';

export type BackendChoice = 'auto' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKENDS: readonly BackendChoice[] = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

/** How optional packages are loaded; tests replace it to simulate a missing package. */
export type PackageLoader = (specifier: string) => Promise<any>;

/**
 * The backends a page can run, imported by literal specifiers so a bundler finds them and splits
 * each into a chunk loaded on first use: `selectBackend('wasm')` works in a bundle as in Node. The
 * `.catch` is what lets a bundler build an app that did not install one of these optional peers
 * (esbuild leaves an unresolvable `import()` that has a handler to fail at run time, where the
 * error reads as "not installed"; Vite puts in a stand-in, an empty module).
 */
const rethrow = (e: unknown): never => {
  throw e;
};
const BROWSER_PACKAGES: Partial<Record<string, () => Promise<any>>> = {
  '@tensorflow/tfjs-backend-wasm': () => import('@tensorflow/tfjs-backend-wasm').catch(rethrow),
  '@tensorflow/tfjs-backend-webgpu': () => import('@tensorflow/tfjs-backend-webgpu').catch(rethrow),
  '@tensorflow/tfjs-backend-cpu': () => import('@tensorflow/tfjs-backend-cpu').catch(rethrow),
};

// Node-only packages (native addons) keep a computed specifier: a bundler must not pull them into a page.
const defaultLoader: PackageLoader = async (specifier) => {
  const literal = BROWSER_PACKAGES[specifier];
  const mod = literal ? await literal() : await import(/* @vite-ignore */ specifier);
  if (literal && isEmptyStandIn(mod)) throw new Error(`Cannot find package '${specifier}'`);
  return mod;
};

/** Vite's production stand-in for a missing optional peer is an empty module; a real backend package exports something. */
function isEmptyStandIn(mod: unknown): boolean {
  if (typeof mod !== 'object' || mod === null) return true;
  const keys = Object.keys(mod).filter((k) => k !== 'default' && k !== '__esModule');
  const fallback = (mod as { default?: unknown }).default;
  return (
    keys.length === 0 &&
    (fallback === undefined || (typeof fallback === 'object' && fallback !== null && Object.keys(fallback).length === 0))
  );
}

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

/**
 * How a failed `import()` of a missing package reads: Node's codes, and the browsers' wording for a
 * bare specifier no import map resolves (Chromium, Firefox, Safari), a module that did not load, and
 * Vite's stand-in for an optional peer dependency that is not installed.
 */
const NOT_FOUND =
  /Cannot find (module|package)|Could not resolve "|Failed to resolve module specifier|Failed to fetch dynamically imported module|error loading dynamically imported module|Importing a module script failed|does not resolve to a valid URL|bare specifier/i;

export function isMissingModule(e: unknown): boolean {
  const code = (e as { code?: string } | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || NOT_FOUND.test(String(e));
}

/**
 * The package's module, or undefined when it is not installed. A backend already registered with
 * tfjs (a page that imported `@tensorflow/tfjs-backend-wasm` itself, as a bundle must) needs no load.
 */
async function tryLoad(load: PackageLoader, specifier: string, backendName?: string): Promise<any | undefined> {
  if (backendName && tf.findBackendFactory(backendName)) return {};
  try {
    return await load(specifier);
  } catch (e) {
    if (isMissingModule(e)) return undefined;
    throw e;
  }
}

const inNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

const WASM_FILES_FIX = inNode
  ? 'reinstall @tensorflow/tfjs-backend-wasm (its dist/*.wasm files are missing), or call setWasmPaths() from it with the folder that holds them'
  : "serve the .wasm files of @tensorflow/tfjs-backend-wasm (node_modules/@tensorflow/tfjs-backend-wasm/dist/*.wasm) with your page, and call setWasmPaths('/their/url/') from @tensorflow/tfjs-backend-wasm before selectBackend";

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
    const mod =
      (await tryLoad(load, '@tensorflow/tfjs-node-gpu', 'tensorflow')) ?? (await tryLoad(load, '@tensorflow/tfjs-node', 'tensorflow'));
    if (!mod) throw missing('tensorflow', 'neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed');
    if (!(await activate('tensorflow')))
      throw missing('tensorflow', 'the tfjs-node binding did not initialise (libtensorflow or CUDA not found)');
  },
  async webgpu(load, automatic) {
    const g = globalThis as { navigator?: { gpu?: unknown } };
    if (!g.navigator?.gpu) {
      if (!inNode)
        throw missing(
          'webgpu',
          'this browser has no navigator.gpu',
          'use a browser with WebGPU (Chrome or Edge 113+, Safari 26+), or --backend wasm',
        );
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
      throw missing(
        'webgpu',
        `the only adapter is a software one (${adapter.info.description || adapter.info.device || 'fallback'})`,
        'name it to use it anyway: --backend webgpu',
      );
    }
    if (!(await tryLoad(load, '@tensorflow/tfjs-backend-webgpu', 'webgpu')))
      throw missing('webgpu', '@tensorflow/tfjs-backend-webgpu is not installed');
    if (!(await activate('webgpu'))) throw missing('webgpu', 'tfjs could not start the webgpu backend');
  },
  async wasm(load) {
    if (!(await tryLoad(load, '@tensorflow/tfjs-backend-wasm', 'wasm')))
      throw missing('wasm', '@tensorflow/tfjs-backend-wasm is not installed');
    if (!(await activate('wasm'))) {
      // The package is there, so what failed is fetching or compiling its .wasm binaries: a page
      // must serve them (bundlers do not copy them), an install may have lost them.
      throw missing('wasm', 'its .wasm files did not load', WASM_FILES_FIX);
    }
    installWasmMatMul();
    installWasmIdentity();
    installWasmGather();
    installWasmLeadingSum();
    installWasmUnsortedSegmentSum();
  },
  async cpu(load) {
    if (!(await tryLoad(load, '@tensorflow/tfjs-backend-cpu', 'cpu')))
      throw missing('cpu', '@tensorflow/tfjs-backend-cpu is not installed');
    if (!(await activate('cpu'))) throw missing('cpu', 'tfjs could not start the cpu backend');
  },
};

/**
 * Selects and initialises a tfjs backend (in Node or a browser). Backend packages are optional: each
 * is imported when first asked for, unless the page already imported it (in a bundle, import the
 * ones you want, e.g. `import '@tensorflow/tfjs-backend-wasm'`; or pass `load`). `auto` takes `tensorflow` when tfjs-node(-gpu) is
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
