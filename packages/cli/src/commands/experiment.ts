import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeltaTuneError, getMethod } from '@deltatune/core';
import { claimOutputDir, writeFileAtomic } from '@deltatune/node';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { modelAndTokenizer, output, prepare, resolveModel } from '../context';
import { aggregate, markdownTable, writeReport } from '../experiment/report';
import { cellsOf, checkGridMethods, readGrid } from '../experiment/grid';
import { cellSpec, runCell, type CellResult } from '../experiment/run-cell';
import type { Cell } from '../experiment/grid';
import { formatSeconds } from '../progress';
import { defineCommand } from './command';

const EXPERIMENT_FLAGS = {
  grid: flag({
    type: 'text',
    accepts: 'a .json or .yaml file',
    help: 'the grid, in place of the positional argument',
    placeholder: 'FILE',
  }),
  out: flag({
    type: 'text',
    accepts: 'a folder',
    help: 'where cells and results are written',
    placeholder: 'DIR',
    defaultText: 'runs/experiments/<grid name>',
  }),
  workers: flag({
    type: 'positiveInteger',
    help: 'processes running cells side by side (each loads the model)',
    placeholder: 'N',
    default: 1,
  }),
  // What a worker process runs: cells i, i+n, i+2n... of those pending (passed by the parent).
  shard: flag({ type: 'text', accepts: 'I/N', help: "a worker's share of the cells", placeholder: 'I/N', hidden: true }),
  overwrite: flag({ type: 'switch', help: 'recompute finished cells that ran other settings than the grid now gives' }),
  ...COMMON_FLAGS,
} as const;

export const experimentCommand = defineCommand({
  name: 'experiment',
  summary: 'a grid of methods x tasks x seeds x budgets: table and plots, resumable',
  about: `deltatune experiment <grid.json|grid.yaml> [--out DIR] [--workers N]
  Runs every cell of a grid (methods x tasks x seeds x budgets; see experiments/seed-paper-small.json).
  Finished cells are kept in DIR/cells/ and skipped when the command runs again, so a killed run
  resumes. Writes DIR/results.jsonl, DIR/results.md (mean ± std over seeds) and, per task,
  convergence-<task>.svg/png and score-vs-params-<task>.svg/png. A grid entry's deltas are named as
  train names them (the method's name, then _2, _3...).`,
  flags: EXPERIMENT_FLAGS,
  positional: 'grid',
  listsMethods: 'methods for a grid delta\'s "method", each with its "options":',
  run: (flags, positional) => experiment(flags, positional),
});

async function experiment(flags: Flags<typeof EXPERIMENT_FLAGS>, positional: readonly string[]): Promise<void> {
  if (positional.length > 1)
    throw new DeltaTuneError(`deltatune experiment takes one grid file, got ${positional.length}`, 'run one grid at a time');
  const gridPath = positional[0] ?? flags.value('grid');
  if (!gridPath)
    throw new DeltaTuneError('deltatune experiment needs a grid file', 'e.g. deltatune experiment experiments/seed-paper-small.json');
  const grid = readGrid(gridPath);
  const out = flags.value('out') ?? join('runs', 'experiments', grid.name);
  const workers = flags.value('workers');
  const shard = flags.value('shard');
  const json = flags.value('json');
  const { backend } = await prepare(flags);
  const overwrite = flags.value('overwrite');
  // Every method must be known before hours of cells run (a typo would fail at its first cell).
  checkGridMethods(grid, gridPath, (name) => getMethod(name));
  // A rerun resumes (finished cells are kept); a folder holding anything else is the user's.
  if (!shard) claimOutputDir(out, { kind: 'experiment', replaces: ['experiment'], overwrite, settings: { grid: grid.name } });
  const cells = cellsOf(grid);
  const cellFile = (id: string) => join(out, 'cells', `${id}.json`);
  // A finished cell counts only if it ran what the grid now says (results from before `spec` was recorded are kept).
  const done = (c: Cell) => {
    if (!existsSync(cellFile(c.id))) return false;
    let saved: CellResult;
    try {
      saved = readCell(cellFile(c.id));
    } catch (e) {
      if (overwrite) return false;
      throw e;
    }
    return saved.spec === undefined || saved.spec === cellSpec(c, grid.model, grid.target);
  };
  const changed = cells.filter((c) => existsSync(cellFile(c.id)) && !done(c));
  if (changed.length && !overwrite && !shard) {
    throw new DeltaTuneError(
      `${changed.length} finished cell${changed.length > 1 ? 's' : ''} in ${join(
        out,
        'cells',
      )} ran other settings than the grid now gives (first: ${changed[0].id})`,
      'add --overwrite to recompute them, or use another --out for the edited grid',
    );
  }
  const pending = cells.filter((c) => !done(c));
  const log = (s: string) => !json && process.stderr.write(s + '\n');

  if (shard || workers <= 1) {
    const [index, count] = shard ? shard.split('/').map(Number) : [0, 1];
    const mine = pending.filter((c) => cells.indexOf(c) % count === index);
    if (!shard) log(`experiment ${grid.name}: ${cells.length} cells, ${cells.length - pending.length} already done, backend ${backend}`);
    if (mine.length) {
      const { backbone, tokenizer } = modelAndTokenizer(await resolveModel(grid.model, true), true);
      for (const [i, cell] of mine.entries()) {
        const result = await runCell(backbone, tokenizer!, cell, grid.target, grid.model);
        writeFileAtomic(cellFile(cell.id), JSON.stringify(result) + '\n');
        log(
          `  [${shard ?? '1/1'}] ${i + 1}/${mine.length} ${cell.id}: test accuracy ${result.testAccuracy.toFixed(4)} (${formatSeconds(
            result.seconds,
          )})`,
        );
      }
      backbone.dispose();
    }
    if (shard) return;
  } else {
    // More workers than cells would only start idle processes (each loads the model).
    const count = Math.min(workers, Math.max(1, pending.length));
    log(
      `experiment ${grid.name}: ${cells.length} cells, ${cells.length - pending.length} already done, ${count} workers, backend ${backend}`,
    );
    const bin = process.argv[1];
    await Promise.all(
      Array.from(
        { length: count },
        (_, i) =>
          new Promise<void>((resolve, reject) => {
            const child = spawn(
              process.execPath,
              [
                bin,
                'experiment',
                gridPath,
                '--out',
                out,
                '--shard',
                `${i}/${count}`,
                '--backend',
                flags.value('backend'),
                // A worker registers the same methods as its parent: the grid may use a plugin's.
                ...flags.value('plugin').flatMap((p) => ['--plugin', p]),
                ...(overwrite ? ['--overwrite'] : []),
              ],
              { stdio: ['ignore', 'inherit', 'inherit'] },
            );
            child.on('exit', (code) =>
              code === 0
                ? resolve()
                : reject(new DeltaTuneError(`experiment worker ${i} exited with ${code}`, 'see its messages above; rerun to resume')),
            );
          }),
      ),
    );
  }

  const results: CellResult[] = cells.filter((c) => existsSync(cellFile(c.id))).map((c) => readCell(cellFile(c.id)));
  writeFileAtomic(join(out, 'results.jsonl'), results.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const methodOrder = grid.methods.map((m) => m.name);
  const files = await writeReport(out, results, methodOrder, grid.target, grid.name);
  const rows = aggregate(results, methodOrder);
  output(
    json,
    { grid: grid.name, backend, cells: cells.length, completed: results.length, skipped: cells.length - pending.length, out, files, rows },
    () => `${markdownTable(rows, grid.target)}\n\nresults: ${join(out, 'results.jsonl')}\nfiles: ${files.join(', ')}`,
  );
}

function readCell(path: string): CellResult {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as CellResult;
  } catch (e) {
    throw new DeltaTuneError(
      `${path} is not a finished cell (${(e as Error).message.split('\n')[0]})`,
      'delete that file to recompute the cell, or rerun with --overwrite',
    );
  }
}
