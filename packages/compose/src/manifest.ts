import { DeltaTuneError } from '@deltatune/core';
import type { Composition } from './composition';

/** `manifest.json` of a saved composition: methods, versions, packages, order and state of each delta. */
export interface CompositionManifest {
  readonly format: 'deltatune-composition';
  readonly version: 1;
  readonly runOrder: readonly string[];
  readonly deltas: ReadonlyArray<{
    readonly name: string;
    readonly method: string;
    readonly methodVersion: string;
    readonly package?: string;
    readonly order?: number;
    readonly active: boolean;
    readonly trainable: boolean;
    /** Subfolder holding the delta's adapter_config.json + adapter_model.safetensors. */
    readonly folder: string;
  }>;
}

export function manifestOf(c: Composition, packageOf: (method: string) => string | undefined): CompositionManifest {
  return {
    format: 'deltatune-composition',
    version: 1,
    runOrder: c.runOrder,
    deltas: c.names.map((name) => {
      const m = c.member(name);
      return { name, method: m.delta.method, methodVersion: m.delta.methodVersion, package: packageOf(m.delta.method), order: m.order, active: m.delta.active, trainable: m.delta.trainable, folder: name };
    }),
  };
}

export function parseManifest(text: string, source: string): CompositionManifest {
  let m: CompositionManifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new DeltaTuneError(`${source} is not valid JSON (${(e as Error).message})`, 'save the composition again');
  }
  if (m.format !== 'deltatune-composition' || !Array.isArray(m.deltas)) {
    throw new DeltaTuneError(`${source} is not a deltatune composition manifest`, 'point at a folder written by saveComposition');
  }
  return m;
}
