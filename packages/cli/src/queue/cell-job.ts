import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { JobEnvelope } from '@deltatune/queue';
import type { Cell, Grid } from '../experiment/grid';
import { cellSpec } from '../experiment/run-cell';
import { CLI_VERSION } from '../version';

/** What a worker needs to run one cell: the cell as the grid gives it, and the grid-wide settings. */
export interface CellPayload {
  readonly grid: string;
  readonly model: string;
  readonly target: number;
  readonly cell: Cell;
}

/** A grid cell as a queue job: its id and spec are the ones a local run writes in cells/<id>.json. */
export function cellJob(cell: Cell, grid: Grid): JobEnvelope<CellPayload> {
  return {
    id: cell.id,
    spec: cellSpec(cell, grid.model, grid.target),
    version: CLI_VERSION,
    files: inputFiles([cell.task.dataset, grid.model]),
    payload: { grid: grid.name, model: grid.model, target: grid.target, cell },
  };
}

/**
 * The files behind a dataset or model named by path (a built-in name or a hub id is no file here),
 * each with its sha256: a worker with another copy, or none, refuses the job instead of computing
 * numbers for other data.
 */
function inputFiles(names: readonly string[]): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of names) for (const path of filesUnder(name)) files[path] = sha256(path);
  return files;
}

function filesUnder(path: string): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return [];
  }
  if (stat.isFile()) return [path];
  if (!stat.isDirectory()) return [];
  return readdirSync(path, { withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => join(path, e.name))
    .sort();
}

// A worker checks the same files for every cell of a grid: hashed once per size and mtime.
const hashes = new Map<string, string>();

function sha256(path: string): string {
  const stat = statSync(path);
  const key = `${path}\u0000${stat.size}\u0000${stat.mtimeMs}`;
  let hash = hashes.get(key);
  if (!hash) hashes.set(key, (hash = hashFile(path)));
  return hash;
}

/** In 1 MiB reads: a model's weight file can be larger than the memory a worker can spare. */
function hashFile(path: string): string {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(1 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Why this machine's copy of a job's files is not the collector's, or undefined when every one matches. */
export function checkJobFiles(files: Readonly<Record<string, string>>): string | undefined {
  for (const [path, want] of Object.entries(files)) {
    let got: string;
    try {
      got = sha256(path);
    } catch {
      return `it reads ${path}, which this machine does not have (give workers the same files at the same paths)`;
    }
    if (got !== want) return `its ${path} differs from the collector's (sha256 ${got.slice(0, 12)} here, ${want.slice(0, 12)} there)`;
  }
  return undefined;
}
