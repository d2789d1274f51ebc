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
      return {
        name,
        method: m.delta.method,
        methodVersion: m.delta.methodVersion,
        package: packageOf(m.delta.method),
        order: m.order,
        active: m.delta.active,
        trainable: m.delta.trainable,
        folder: name,
      };
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
  const names = new Set<string>();
  m.deltas.forEach((d, i) => {
    const bad = (what: string) =>
      new DeltaTuneError(`${source}: deltas[${i}] ${what}`, 'save the composition again (saveComposition writes the manifest)');
    if (!d || typeof d.name !== 'string' || !d.name) throw bad('has no "name"');
    if (names.has(d.name)) throw bad(`repeats the name "${d.name}"`);
    names.add(d.name);
    if (typeof d.method !== 'string' || !d.method) throw bad('has no "method"');
    // A delta lives in a subfolder of the composition: never an absolute path or one that climbs out of it.
    const parts: string[] = typeof d.folder === 'string' ? d.folder.split(/[\\/]/) : [];
    const outside =
      typeof d.folder !== 'string' ||
      /^([a-zA-Z]:)?[\\/]/.test(d.folder) ||
      parts.some((p) => p === '..') ||
      parts.every((p) => p === '.' || p === '');
    if (outside) throw bad(`has folder ${JSON.stringify(d.folder)}, not a subfolder name`);
    if (d.order !== undefined && (typeof d.order !== 'number' || !Number.isFinite(d.order)))
      throw bad('has an "order" that is not a number');
    if (typeof d.active !== 'boolean' || typeof d.trainable !== 'boolean') throw bad('needs "active" and "trainable" booleans');
  });
  return m;
}
