import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { DeltaTuneError } from '@deltatune/core';
import { writeFileAtomic } from '@deltatune/node';
import type { QueueSnapshot } from '@deltatune/queue';
import type { Cell, Grid } from '../experiment/grid';
import { cellFile } from '../experiment/results';
import type { CellResult } from '../experiment/run-cell';
import { formatSeconds } from '../progress';
import { cellJob } from './cell-job';

export interface QueueRunOptions {
  /** The `--queue` URL as given. */
  readonly url: string;
  readonly out: string;
  readonly grid: Grid;
  /** The cells not yet in out/cells. */
  readonly pending: readonly Cell[];
  readonly attempts: number;
  readonly backoffMs: number;
  readonly overwrite: boolean;
  /** Local `deltatune worker` processes to start alongside (0: workers run elsewhere). */
  readonly localWorkers: number;
  /** Flags those workers get (backend, plugins). */
  readonly workerArgs: readonly string[];
  readonly log: (line: string) => void;
}

export interface CellFailure {
  readonly id: string;
  readonly reason: string;
  readonly attempts: number;
}

/**
 * The collector: enqueues the pending cells, follows them until each is finished or failed, and
 * writes each finished one to out/cells/<id>.json (atomically, once: a cell finishes once in BullMQ).
 */
export async function runOnQueue(o: QueueRunOptions): Promise<{ failures: CellFailure[]; collected: number }> {
  // Loaded here: bullmq and ioredis cost startup time every other command would pay.
  const { enqueueJobs, followJobs, openQueue, openRedis, parseQueueUrl } = await import('@deltatune/queue');
  const url = parseQueueUrl(o.url);
  const redis = await openRedis(url, `deltatune-collector:${hostname()}:${process.pid}`);
  const queue = openQueue(redis);
  const children: ChildProcess[] = [];
  try {
    const jobs = o.pending.map((c) => cellJob(c, o.grid));
    const report = await enqueueJobs(queue, jobs, { attempts: o.attempts, backoffMs: o.backoffMs, overwrite: o.overwrite });
    if (report.conflicts.length) {
      const [first] = report.conflicts;
      throw new DeltaTuneError(
        `${report.conflicts.length} cell${report.conflicts.length > 1 ? 's are' : ' is'} already in the queue at ${url.display} with other settings (first: ${first.id}, ${first.state}: ${first.why})`,
        o.overwrite
          ? 'wait for the running cells to finish (or stop their workers), then rerun with --overwrite'
          : `add --overwrite to replace them, or use another database for the edited grid (e.g. ${url.display.replace(/\/\d*$/, '')}/${(url.db + 1) % 16})`,
      );
    }
    const parts = [
      `${report.added.length} enqueued`,
      report.queued.length && `${report.queued.length} already queued`,
      report.completed.length && `${report.completed.length} finished earlier`,
      report.retried.length && `${report.retried.length} failed before, retried`,
    ].filter(Boolean);
    o.log(`queue ${url.display}: ${parts.join(', ')}`);

    for (let i = 0; i < o.localWorkers; i++) {
      const child = spawn(process.execPath, [process.argv[1], 'worker', '--queue', o.url, '--exit-when-idle', ...o.workerArgs], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      child.on('exit', (code, signal) => code !== 0 && o.log(`  local worker ${child.pid} exited with ${code ?? signal}`));
      children.push(child);
    }

    const failures: CellFailure[] = [];
    const started = Date.now();
    let collected = 0;
    const status = statusLine(jobs.length, started, url.display);
    await followJobs<CellResult>(queue, redis, jobs, {
      completed: (id, outcome) => {
        writeFileAtomic(cellFile(o.out, id), JSON.stringify(outcome.result) + '\n');
        collected++;
        o.log(
          `  [${outcome.worker}] ${id}: test accuracy ${outcome.result.testAccuracy.toFixed(4)} (${formatSeconds(outcome.result.seconds)})`,
        );
      },
      failed: (id, reason, attempts) => {
        failures.push({ id, reason, attempts });
        o.log(`  ${id} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${reason.split('\n')[0]}`);
      },
      refused: (worker, message) => o.log(`  worker ${worker} refused ${message}`),
      progress: (snapshot) => {
        const line = status(snapshot);
        if (line) o.log(line);
      },
    });
    return { failures, collected };
  } finally {
    // Local workers exit once the queue is idle; one still running is not needed any more.
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.on('exit', r)) : undefined)),
    );
    await queue.close();
    await redis.quit().catch(() => redis.disconnect());
  }
}

/**
 * A progress line when the counts change, else at most every 30 s: done / running / failed, per
 * worker, the ETA from this run's rate, and a hint when no worker is connected.
 */
function statusLine(total: number, started: number, display: string) {
  let last = '';
  let lastAt = 0;
  let noWorkerSince: number | undefined;
  return (s: QueueSnapshot): string | undefined => {
    const finished = s.done + s.failed;
    const rate = finished / Math.max(1, Date.now() - started);
    const eta = finished && finished < total ? `, ETA ${formatSeconds((total - finished) / rate / 1000)}` : '';
    const perWorker = [...s.donePerWorker].map(([w, n]) => `${w} ${n}`).join(', ');
    const counts = `${s.done}/${total} done, ${s.running.length} running, ${s.failed} failed, ${s.waiting + s.retrying} waiting`;
    const line = `  ${counts} · ${s.workers.length} worker${s.workers.length === 1 ? '' : 's'}${perWorker ? ` (done: ${perWorker})` : ''}${eta}`;
    if (s.workers.length === 0) noWorkerSince ??= Date.now();
    else noWorkerSince = undefined;
    const now = Date.now();
    if (noWorkerSince !== undefined && now - noWorkerSince > 10_000 && now - lastAt > 30_000) {
      lastAt = now;
      return `${line}\n  no worker is connected: start one on any machine with  deltatune worker --queue ${display}`;
    }
    if (counts === last && now - lastAt < 30_000) return undefined;
    last = counts;
    lastAt = now;
    return line;
  };
}
