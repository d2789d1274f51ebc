import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeltaTuneError } from '@deltatune/core';
import { writeFileAtomic } from '@deltatune/node';
import { aggregate, writeReport } from './report';
import type { Cell, Grid } from './grid';
import type { CellResult } from './run-cell';

/** Where a finished cell's result is kept: a local run and a queue's collector write the same file. */
export const cellFile = (out: string, id: string) => join(out, 'cells', `${id}.json`);

export function readCell(path: string): CellResult {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as CellResult;
  } catch (e) {
    throw new DeltaTuneError(
      `${path} is not a finished cell (${(e as Error).message.split('\n')[0]})`,
      'delete that file to recompute the cell, or rerun with --overwrite',
    );
  }
}

/** results.jsonl (grid order), results.md and the plots, from every finished cell in out/cells. */
export async function writeResults(out: string, grid: Grid, cells: readonly Cell[]) {
  const results: CellResult[] = cells.filter((c) => existsSync(cellFile(out, c.id))).map((c) => readCell(cellFile(out, c.id)));
  writeFileAtomic(join(out, 'results.jsonl'), results.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const methodOrder = grid.methods.map((m) => m.name);
  const files = await writeReport(out, results, methodOrder, grid.target, grid.name);
  return { results, files, rows: aggregate(results, methodOrder) };
}
