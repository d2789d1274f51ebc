// The Node side of file datasets: finding and reading the file. Decoding, parsing, checking and
// splitting are the main entry's (src/datasets/file-dataset.ts), which a page runs on a dropped file.
import { readFileSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { DeltaTuneError } from '@deltatune/core';
import { datasetFromFile, datasetKindOfName, decodeDatasetText, type Dataset, type FileColumns } from '../../index';
// Helpers the main entry does not export (sft-file.ts reads JSONL with them). Bundled into the /node
// entry as well; they hold no state.
import { SUPPORTED_DATASET_FILES, sh } from '../../datasets/file-names';

export type { FileColumns } from '../../index';
export { parseCsv } from '../../index';
export { sh } from '../../datasets/file-names';
export { kindOf, preview, readJsonl } from '../../datasets/file-records';
export type { ParsedFile, SourceRecord } from '../../datasets/file-records';

const BUILTINS = 'spam, imdb, sotu-party';

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new DeltaTuneError(
      `cannot read ${path} (${code}): ${(e as Error).message}`,
      `check that the file is readable: ls -l ${sh(path)}`,
    );
  }
}

/** The file's text, decoded strictly (`decodeDatasetText`: UTF-16, bytes that are not UTF-8, NUL bytes are refused). */
export function readText(path: string): string {
  return decodeDatasetText(readBytes(path), path);
}

/**
 * What a dataset path is, `csv` or `jsonl` by its extension, or a DeltaTuneError saying what is
 * wrong with it: missing, a folder (naming a file in it), another type.
 */
export function datasetFileKind(path: string): 'csv' | 'jsonl' {
  let stat: Stats | undefined;
  try {
    stat = statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    throw new DeltaTuneError(`cannot read ${path}: ${(e as Error).message}`, `check the path and its permissions: ls -ld ${sh(path)}`);
  }
  if (!stat)
    throw new DeltaTuneError(`dataset file not found: ${path}`, `pass ${SUPPORTED_DATASET_FILES}, or a built-in name: ${BUILTINS}`);
  if (stat.isDirectory()) {
    let inside: string[];
    try {
      inside = readdirSync(path)
        .filter((f) => /\.(jsonl|ndjson|csv)$/i.test(f))
        .sort();
    } catch {
      inside = []; // unreadable: the message names no file
    }
    throw new DeltaTuneError(
      `${path} is a directory, not a dataset file`,
      inside.length ? `pass one file in it, e.g. --dataset ${sh(join(path, inside[0]))}` : `pass ${SUPPORTED_DATASET_FILES}`,
    );
  }
  return datasetKindOfName(path);
}

/**
 * A user's own data: `.jsonl`/`.ndjson` (one object per line) or `.csv` (with a header row), with a
 * text and a label column (`text` and `label` unless named). Labels may be strings or numbers; they
 * are sorted as strings to give class ids. The returned Dataset's `labels` and split lengths are what
 * a caller prints. Anything unusable in the file is a DeltaTuneError naming the file (and line).
 * `task: 'lm'` reads the same files for causal LM, where the labels do not matter (one label is fine).
 */
export function loadFileDataset(path: string, columns: FileColumns = {}, options: { task?: 'classification' | 'lm' } = {}): Dataset {
  const kind = datasetFileKind(path);
  return datasetFromFile(path, readBytes(path), kind, columns, { task: options.task });
}
