import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DeltaTuneError, getMethod } from '@deltatune/core';
import { claimOutputDir, writeFileAtomic } from '@deltatune/node';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { modelAndTokenizer, output, prepare, resolveModel } from '../context';
import { markdownTable } from '../experiment/report';
import { cellFile as cellFileOf, readCell, writeResults } from '../experiment/results';
import { cellsOf, checkGridMethods, readGrid } from '../experiment/grid';
import { cellSpec, runCell, type CellResult } from '../experiment/run-cell';
import type { Cell, Grid } from '../experiment/grid';
import { runOnQueue } from '../queue/collect';
import { formatSeconds } from '../progress';
import { defaultThreads, threadsEach } from '../threads';
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
    type: 'nonNegativeInteger',
    help: 'processes running cells side by side (each loads the model); with --queue, local workers besides remote ones',
    placeholder: 'N',
    default: 1,
    defaultText: '1, or 0 with --queue',
  }),
  queue: flag({
    type: 'text',
    accepts: 'a redis:// or rediss:// URL',
    help: 'run the cells on workers anywhere (deltatune worker --queue URL) through BullMQ in this Redis',
    placeholder: 'URL',
  }),
  attempts: flag({
    type: 'positiveInteger',
    help: 'with --queue: runs a cell gets before it is reported failed (a lost worker is retried apart)',
    placeholder: 'N',
    default: 3,
  }),
  backoff: flag({
    type: 'nonNegativeInteger',
    help: "with --queue: ms before a failed cell's first retry (doubling after)",
    placeholder: 'MS',
    default: 5000,
  }),
  // What a worker process runs: cells i, i+n, i+2n... of those pending (passed by the parent).
  shard: flag({ type: 'text', accepts: 'I/N', help: "a worker's share of the cells", placeholder: 'I/N', hidden: true }),
  overwrite: flag({ type: 'switch', help: 'recompute finished cells that ran other settings than the grid now gives' }),
  ...COMMON_FLAGS,
} as const;

export const experimentCommand = defineCommand({
  name: 'experiment',
  summary: 'a grid of methods x tasks x seeds x budgets: table and plots, resumable',
  about: `deltatune experiment <grid.json|grid.yaml> [--out DIR] [--workers N] [--queue redis://HOST:PORT[/DB]]
  Runs every cell of a grid (methods x tasks x seeds x budgets; see experiments/seed-paper-small.json).
  Finished cells are kept in DIR/cells/ and skipped when the command runs again, so a killed run
  resumes. Writes DIR/results.jsonl, DIR/results.md (mean ± std over seeds) and, per task,
  convergence-<task>.svg/png and score-vs-params-<task>.svg/png. A grid entry's deltas are named as
  train names them (the method's name, then _2, _3...).
  With --queue, the cells go to a BullMQ queue in that Redis (job id = cell id: enqueueing twice adds
  nothing) and run on \`deltatune worker --queue URL\` processes on any machine; this command follows
  them and writes the same files as a local run, then exits.`,
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
  const queue = flags.value('queue');
  if (workers < 1 && queue === undefined)
    throw new DeltaTuneError('--workers 0 runs no cell without --queue', 'give --workers 1 or more, or --queue URL for remote workers');
  // A bad URL is refused before anything is written.
  if (queue !== undefined) (await import('@deltatune/queue')).parseQueueUrl(queue);
  const json = flags.value('json');
  const { backend } = await prepare(flags);
  const overwrite = flags.value('overwrite');
  // Every method must be known before hours of cells run (a typo would fail at its first cell).
  checkGridMethods(grid, gridPath, (name) => getMethod(name));
  // A rerun resumes (finished cells are kept); a folder holding anything else is the user's.
  if (!shard) claimOutputDir(out, { kind: 'experiment', replaces: ['experiment'], overwrite, settings: { grid: grid.name } });
  const cells = cellsOf(grid);
  const cellFile = (id: string) => cellFileOf(out, id);
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

  if (queue !== undefined) {
    if (shard) throw new DeltaTuneError('--shard and --queue do not go together', 'drop --shard: queue workers take cells one at a time');
    log(`experiment ${grid.name}: ${cells.length} cells, ${cells.length - pending.length} already done, on the queue`);
    const { failures } = await runOnQueue({
      url: queue,
      out,
      grid,
      pending,
      attempts: flags.value('attempts'),
      backoffMs: flags.value('backoff'),
      overwrite,
      localWorkers: flags.given('workers') ? workers : 0,
      workerArgs: [
        '--backend',
        flags.value('backend'),
        // The local workers share this machine's cores.
        '--threads',
        String(threadsEach(Math.max(1, workers), flags.value('threads') ?? defaultThreads())),
        ...flags.value('plugin').flatMap((p) => ['--plugin', p]),
      ],
      log,
    });
    // With --json, stdout holds one document: the error's, when cells failed (the files are written all the same).
    const report = await finish(out, grid, cells, pending, backend, json, !(json && failures.length));
    if (failures.length)
      throw new DeltaTuneError(
        `${failures.length} of ${cells.length} cells failed every attempt (first: ${failures[0].id}: ${failures[0].reason.split('\n')[0]}); the others are in ${report}`,
        'fix what the error names, then run the same command again: failed cells are retried from the start',
      );
    return;
  }
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
                '--threads',
                String(threadsEach(count, flags.value('threads') ?? defaultThreads())),
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

  await finish(out, grid, cells, pending, backend, json);
}

/** Writes results.jsonl, the table and the plots from out/cells, prints them; returns results.jsonl's path. */
async function finish(
  out: string,
  grid: Grid,
  cells: readonly Cell[],
  pending: readonly Cell[],
  backend: string,
  json: boolean,
  print = true,
) {
  const { results, files, rows } = await writeResults(out, grid, cells);
  if (print)
    output(
      json,
      {
        grid: grid.name,
        backend,
        cells: cells.length,
        completed: results.length,
        skipped: cells.length - pending.length,
        out,
        files,
        rows,
      },
      () => `${markdownTable(rows, grid.target)}\n\nresults: ${join(out, 'results.jsonl')}\nfiles: ${files.join(', ')}`,
    );
  return join(out, 'results.jsonl');
}
