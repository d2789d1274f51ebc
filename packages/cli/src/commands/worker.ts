import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { DeltaTuneError, getMethod, type Backbone } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import type { Flags } from '../args';
import { flag } from '../command-line/flag-schema';
import { COMMON_FLAGS } from '../common-flags';
import { modelAndTokenizer, prepare, resolveModel } from '../context';
import { runCell, type CellResult } from '../experiment/run-cell';
import { checkJobFiles, type CellPayload } from '../queue/cell-job';
import { defaultThreads, threadsEach } from '../threads';
import { CLI_VERSION } from '../version';
import { defineCommand } from './command';

const WORKER_FLAGS = {
  queue: flag({
    type: 'text',
    accepts: 'a redis:// or rediss:// URL',
    help: 'the Redis the grid was enqueued in (deltatune experiment GRID --queue URL)',
    placeholder: 'URL',
  }),
  concurrency: flag({
    type: 'positiveInteger',
    help: 'cells run at once, each in its own process (each loads the model)',
    placeholder: 'N',
    default: 1,
  }),
  'exit-when-idle': flag({ type: 'switch', help: 'exit once the queue has had nothing waiting or running for 3 s' }),
  'lock-seconds': flag({
    type: 'positive',
    help: "how soon a lost worker's cell is retried elsewhere (its lock lapses; renewed at half this while it runs)",
    placeholder: 'S',
    default: 60,
  }),
  ...COMMON_FLAGS,
} as const;

export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'runs experiment cells from a Redis queue (deltatune experiment --queue), on any machine',
  about: `deltatune worker --queue redis://HOST:PORT[/DB] [--concurrency N] [--exit-when-idle]
  Takes experiment cells from the queue one at a time and runs each with the same code as a local
  experiment; the result goes back through Redis, so the collector needs no shared disk. A cell whose
  worker dies (kill -9, machine lost) is retried by another once its lock lapses (--lock-seconds).
  A worker refuses, and stops at, a cell queued by another deltatune version, or one that needs a
  method (--plugin) or a dataset file it lacks or holds in another version: the cell goes back to the
  queue untouched. Ctrl-C hands the running cell back and exits.`,
  flags: WORKER_FLAGS,
  listsMethods: 'methods this worker can run (add others with --plugin):',
  run: (flags) => worker(flags),
});

async function worker(flags: Flags<typeof WORKER_FLAGS>): Promise<void> {
  const url = flags.value('queue');
  if (!url) throw new DeltaTuneError('deltatune worker needs --queue', 'e.g. deltatune worker --queue redis://127.0.0.1:6379');
  const { parseQueueUrl, runQueueWorker } = await import('@deltatune/queue');
  const parsed = parseQueueUrl(url);
  const concurrency = flags.value('concurrency');
  if (concurrency > 1) return workerProcesses(concurrency, flags.value('threads') ?? defaultThreads());
  await prepare(flags);
  const name = `${hostname()}:${process.pid}`;
  const log = (line: string) => process.stderr.write(line + '\n');
  const stop = new AbortController();
  const onSignal = () => stop.abort('stopped by a signal');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A child of `--concurrency N` goes when its parent does.
  process.once('disconnect', onSignal);
  const models = new ModelCache();
  try {
    log(`worker ${name}: taking cells from ${parsed.display} (deltatune ${CLI_VERSION})`);
    const summary = await runQueueWorker<CellPayload, CellResult>({
      url: parsed,
      name,
      version: CLI_VERSION,
      lockMs: flags.value('lock-seconds') * 1000,
      exitWhenIdle: flags.value('exit-when-idle'),
      stop: stop.signal,
      log,
      check: ({ payload, files }) => missingMethod(payload) ?? checkJobFiles(files),
      run: async ({ payload }, signal) => {
        const { backbone, tokenizer } = await models.get(payload.model);
        return runCell(backbone, tokenizer, payload.cell, payload.target, payload.model, signal);
      },
    });
    log(`worker ${name}: ${summary.completed} cells done, ${summary.failed} failed attempts`);
  } finally {
    models.dispose();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('disconnect', onSignal);
  }
}

function missingMethod(payload: CellPayload): string | undefined {
  for (const d of payload.cell.method.deltas ?? []) {
    try {
      getMethod(d.method);
    } catch {
      return `it needs the method "${d.method}", which this worker has not registered (start it with the collector's --plugin)`;
    }
  }
  return undefined;
}

/** The model the last cell used, kept for the next: a grid's cells share one. */
class ModelCache {
  private loaded?: { model: string; backbone: Backbone; tokenizer: TextTokenizer };
  async get(model: string): Promise<{ backbone: Backbone; tokenizer: TextTokenizer }> {
    if (this.loaded?.model !== model) {
      this.dispose();
      const { backbone, tokenizer } = modelAndTokenizer(await resolveModel(model, true), true);
      this.loaded = { model, backbone, tokenizer: tokenizer! };
    }
    return this.loaded;
  }
  dispose(): void {
    this.loaded?.backbone.dispose();
    this.loaded = undefined;
  }
}

/** `--concurrency N`: N single-cell workers as child processes (tfjs runs one model per thread here). */
async function workerProcesses(n: number, threads: number): Promise<void> {
  const own = ['--concurrency', '--threads'];
  const args = process.argv
    .slice(2)
    .filter((a, i, all) => !own.includes(a) && !own.includes(all[i - 1]) && !own.some((f) => a.startsWith(`${f}=`)));
  // The children share this machine's cores.
  const childArgs = [...args, '--threads', String(threadsEach(n, threads))];
  const children = Array.from({ length: n }, () =>
    spawn(process.execPath, [process.argv[1], ...childArgs], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  // Stopping the parent stops each child the same way (each hands its cell back), and waits for them.
  const forward = (signal: NodeJS.Signals) => children.forEach((c) => c.exitCode === null && c.kill(signal));
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const codes = await Promise.all(children.map((c) => new Promise<number>((resolve) => c.on('exit', (code) => resolve(code ?? 1)))));
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  const bad = codes.filter((c) => c !== 0).length;
  if (bad) throw new DeltaTuneError(`${bad} of ${n} worker processes exited with an error`, 'see their messages above');
}
