import type { Backbone, Delta } from '@deltatune/core';
import { loadDelta } from '@deltatune/node';
import { isCompositionFolder, loadComposition } from '@deltatune/node/composition';

/** Attaches saved deltas: single delta folders (ours or PEFT's) and composition folders (manifest.json). */
export function loadDeltas(backbone: Backbone, dirs: readonly string[]): Delta[] {
  return dirs.flatMap((dir) => (isCompositionFolder(dir) ? loadComposition(backbone, dir).deltas : [loadDelta(backbone, dir).delta]));
}
