import { existsSync } from 'node:fs';
import { DeltaTuneError, closestNames } from '@deltatune/core';
import { loadFileDataset, type FileColumns } from './files';
import { loadSftFile } from './sft-file';
import { loadImdb } from './imdb';
import { loadSotuParty } from './sotu';
import { loadSpam } from './spam';
import type { Dataset, SftDataset, TaskKind } from '../../index';

export const BUILTIN_DATASETS: Record<string, () => Dataset> = {
  spam: loadSpam,
  imdb: loadImdb,
  'sotu-party': loadSotuParty,
};

/**
 * A built-in dataset by name, or a `.jsonl` / `.csv` file. `task: 'sft'` reads a `.jsonl` file of
 * prompt/completion or messages records (`loadSftFile`) instead.
 */
export function loadDataset(nameOrPath: string, columns: FileColumns | undefined, options: { task: 'sft' }): SftDataset;
export function loadDataset(nameOrPath: string, columns?: FileColumns, options?: { task?: 'classification' | 'lm' }): Dataset;
export function loadDataset(nameOrPath: string, columns?: FileColumns, options?: { task?: TaskKind }): Dataset | SftDataset;
export function loadDataset(nameOrPath: string, columns?: FileColumns, options: { task?: TaskKind } = {}): Dataset | SftDataset {
  const builtin: (() => Dataset) | undefined = BUILTIN_DATASETS[nameOrPath];
  if (options.task === 'sft') {
    if (builtin !== undefined)
      throw new DeltaTuneError(
        `the built-in dataset ${nameOrPath} is labelled text, which --task sft does not train on`,
        'pass a .jsonl file of {"prompt": "...", "completion": "..."} or {"messages": [...]} lines',
      );
    return loadSftFile(nameOrPath);
  }
  if (builtin) return builtin();
  // Anything that looks like a path goes to the file loader, which says precisely what is wrong with it
  // (missing, a directory, an unsupported type) instead of "unknown dataset".
  if (/[\\/]/.test(nameOrPath) || /\.[A-Za-z0-9]+$/.test(nameOrPath) || existsSync(nameOrPath))
    return loadFileDataset(nameOrPath, columns, { task: options.task });
  const near = closestNames(nameOrPath, Object.keys(BUILTIN_DATASETS), 1);
  throw new DeltaTuneError(
    `unknown dataset "${nameOrPath}"${near.length ? ` (did you mean ${near[0]}?)` : ''}`,
    `use ${Object.keys(BUILTIN_DATASETS).join(', ')}, or a .jsonl/.csv file with text and label columns`,
  );
}
