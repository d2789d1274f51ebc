import { existsSync, readdirSync } from 'node:fs';
import { DeltaTuneError, type Backbone } from '@deltatune/core';
import { selectBackend } from '@deltatune/backends';
import { useWasmThreads, wasmThreads } from '@deltatune/backends/node';
import type { TextTokenizer } from '@deltatune/models';
import { isHubModelId, loadBackbone, loadTokenizer, resolveModelDir } from '@deltatune/models/node';
import type { Flags } from './args';
import type { CommonFlags } from './common-flags';
import { prepareMethods } from './methods';
import { ProgressBar } from './progress';
import { defaultThreads } from './threads';

/**
 * Whether `auto` should probe WebGPU. Probing starts Dawn, which enumerates Vulkan drivers and
 * prints its warnings about a software one (lavapipe) to stderr: on Linux without a GPU device
 * node there is no hardware adapter to find, so skip it there.
 */
function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  return existsSync('/dev/dri') || readdirSafe('/dev').some((f) => f.startsWith('nvidia'));
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** What every command starts with: a backend, the registered methods (plugins too). */
/** The backend each command computes on, the threads wasm's products use, and the methods registered. */
export async function prepare(flags: Flags<CommonFlags>): Promise<{ backend: string; threads: number }> {
  await useWasmThreads(flags.value('threads') ?? defaultThreads());
  const backend = await selectBackend(flags.value('backend'), undefined, mayHaveGpu() ? undefined : ['tensorflow', 'wasm']);
  await prepareMethods(flags.value('plugin'));
  return { backend, threads: backend === 'wasm' ? await wasmThreads() : 1 };
}

/**
 * `--model` as something loadBackbone/loadTokenizer take: a hub id (owner/name[@revision]) is
 * fetched into the Hugging Face cache first, with a bar per large file on stderr, and becomes its
 * snapshot folder; use-lite and paths come back as they are.
 */
export async function resolveModel(model: string, quiet: boolean): Promise<string> {
  if (!isHubModelId(model)) return model;
  const bars = new Map<string, { bar: ProgressBar; at: number }>();
  const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
  return resolveModelDir(model, {
    onProgress: (file, done, total) => {
      // The JSON files are a few KB: a bar each would be noise.
      if (quiet || total < 1e6) return;
      let b = bars.get(file);
      if (!b) bars.set(file, (b = { bar: new ProgressBar(file, mb(total), 'MB'), at: 0 }));
      // Chunks arrive every few KB; redraw at most 10 times a second, and at the end.
      if (done < total && Date.now() - b.at < 100) return;
      b.at = Date.now();
      b.bar.update(mb(done));
    },
  });
}

export function modelAndTokenizer(model: string, needTokenizer: boolean): { backbone: Backbone; tokenizer?: TextTokenizer } {
  if (!model.trim()) throw new DeltaTuneError('--model is empty', 'e.g. --model use-lite, or a Hugging Face model folder');
  const backbone = loadBackbone(model);
  return { backbone, tokenizer: needTokenizer ? loadTokenizer(model) : undefined };
}

/** Prints a result: JSON on stdout for `--json`, else the human text. */
export function output(json: boolean, data: unknown, text: () => string): void {
  process.stdout.write(json ? JSON.stringify(data, null, 2) + '\n' : text() + '\n');
}
