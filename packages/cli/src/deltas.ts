import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_FILE, type Backbone, type Delta } from '@deltatune/core';
import { loadDelta } from '@deltatune/node';
import { isCompositionFolder, loadComposition } from '@deltatune/node/composition';
import { CLASSIFIER_CONFIG, LM_TASK_FILE } from '@deltatune/train';

/** What a run's `deltas/` folder (several deltas trained together) lists in its classifier.json or task.json. */
export function runDeltaList(dir: string): string[] | undefined {
  for (const file of [CLASSIFIER_CONFIG, LM_TASK_FILE]) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    try {
      const names = (JSON.parse(readFileSync(path, 'utf8')) as { deltas?: unknown }).deltas;
      if (Array.isArray(names) && names.every((n) => typeof n === 'string')) return names as string[];
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Attaches saved deltas: single delta folders (ours or PEFT's), composition folders (manifest.json)
 * and a training run's `deltas/` folder (several deltas trained together).
 */
export function loadDeltas(backbone: Backbone, dirs: readonly string[]): Delta[] {
  return dirs.flatMap((dir) => {
    if (isCompositionFolder(dir)) return loadComposition(backbone, dir).deltas;
    const listed = existsSync(join(dir, CONFIG_FILE)) ? undefined : runDeltaList(dir);
    if (listed) return listed.map((name) => loadDelta(backbone, join(dir, name), name).delta);
    return [loadDelta(backbone, dir).delta];
  });
}
