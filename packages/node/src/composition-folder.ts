import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getMethod, listMethods, type Backbone } from '@deltatune/core';
import { compose, manifestOf, parseManifest, type Composition } from '@deltatune/compose';
import { writeFileAtomic } from './atomic';
import { loadDelta, saveDelta } from './delta-folder';

export const MANIFEST_FILE = 'manifest.json';

/** Whether a folder holds a saved composition (rather than one delta). */
export function isCompositionFolder(dir: string): boolean {
  return existsSync(join(dir, MANIFEST_FILE));
}

/** Saves every delta in its own subfolder, then the manifest (written last: a folder with a manifest is complete). */
export async function saveComposition(dir: string, composition: Composition): Promise<void> {
  for (const name of composition.names) await saveDelta(join(dir, name), composition.get(name));
  const packages = new Map(listMethods().map((m) => [m.name, m.packageName]));
  writeFileAtomic(
    join(dir, MANIFEST_FILE),
    JSON.stringify(
      manifestOf(composition, (m) => packages.get(m)),
      null,
      2,
    ) + '\n',
  );
}

/**
 * Loads a saved composition onto a backbone: each delta by its method (a method whose package is
 * not installed is an error naming the package), with its order, active and trainable state.
 */
export function loadComposition(backbone: Backbone, dir: string): Composition {
  const manifest = parseManifest(readFileSync(join(dir, MANIFEST_FILE), 'utf8'), join(dir, MANIFEST_FILE));
  for (const d of manifest.deltas)
    getMethod(
      d.method,
      `the composition's delta "${d.name}" needs method "${d.method}": npm install ${d.package ?? `the package that provides ${d.method}`} and register it (or pass --plugin)`,
    );
  const composition = compose(backbone);
  for (const d of manifest.deltas) {
    const { delta, spec } = loadDelta(backbone, join(dir, d.folder), d.name);
    composition.adopt(delta, spec, { order: d.order });
    delta.active = d.active;
    delta.trainable = d.trainable;
  }
  return composition;
}
