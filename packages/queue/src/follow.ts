import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { REFUSALS_KEY, type JobEnvelope, type JobOutcome } from './cell-jobs';

/** One cell a worker holds now. */
export interface RunningJob {
  readonly id: string;
  readonly worker: string;
  readonly sinceMs: number;
}

/** The queue as the collector sees it on one poll, restricted to its own jobs. */
export interface QueueSnapshot {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly running: readonly RunningJob[];
  /** Waiting for a worker, or for a retry after a failed attempt. */
  readonly waiting: number;
  readonly retrying: number;
  /** Workers connected to the queue (BullMQ's client names), this grid's or not. */
  readonly workers: readonly string[];
  /** Cells done per worker, over this collection. */
  readonly donePerWorker: ReadonlyMap<string, number>;
}

export interface FollowHandlers<R> {
  /** A job finished; its outcome is checked against what was enqueued before this is called. */
  completed(id: string, outcome: JobOutcome<R>): void | Promise<void>;
  /** A job failed every attempt. */
  failed(id: string, reason: string, attempts: number): void;
  /** After each poll. */
  progress?(snapshot: QueueSnapshot): void;
  /** A worker refused a job (wrong version, missing method or file): shown once per worker and message. */
  refused?(worker: string, message: string): void;
}

/**
 * Polls the queue until every job is finished or failed. Polling, not events: a collector started
 * after the jobs ran (or restarted) sees the same thing as one that watched them all along.
 * A job's outcome must name the spec and version it was enqueued with, or it is reported failed.
 */
export async function followJobs<R>(
  queue: Queue<JobEnvelope, JobOutcome>,
  redis: Redis,
  jobs: readonly JobEnvelope[],
  handlers: FollowHandlers<R>,
  opts: { pollMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const pollMs = opts.pollMs ?? 1000;
  const expected = new Map(jobs.map((j) => [j.id, j]));
  const pending = new Set(expected.keys());
  const donePerWorker = new Map<string, number>();
  const seenRefusals = new Set<string>();
  let done = 0;
  let failed = 0;
  for (;;) {
    if (opts.signal?.aborted) return;
    const ids = [...pending];
    const states = await Promise.all(ids.map((id) => queue.getJobState(id)));
    let waiting = 0;
    let retrying = 0;
    for (const [i, id] of ids.entries()) {
      const state = states[i];
      if (state === 'completed' || state === 'failed' || state === 'unknown') {
        const job = await queue.getJob(id);
        pending.delete(id);
        if (state === 'unknown' || !job) {
          failed++;
          handlers.failed(id, 'the job was removed from the queue while it was followed (rerun to enqueue it again)', 0);
        } else if (state === 'failed') {
          failed++;
          handlers.failed(id, job.failedReason || 'failed without a reason', job.attemptsMade);
        } else {
          const outcome = job.returnvalue as JobOutcome<R>;
          const want = expected.get(id)!;
          if (!outcome || outcome.spec !== want.spec || outcome.version !== want.version) {
            failed++;
            handlers.failed(
              id,
              `its result was computed for other settings or by another version (${outcome?.version ?? 'none'})`,
              job.attemptsMade,
            );
          } else {
            done++;
            donePerWorker.set(outcome.worker, (donePerWorker.get(outcome.worker) ?? 0) + 1);
            await handlers.completed(id, outcome);
          }
        }
      } else if (state === 'delayed') retrying++;
      else if (state !== 'active') waiting++;
    }
    const refusals = await redis.hgetall(REFUSALS_KEY);
    for (const [worker, message] of Object.entries(refusals)) {
      if (seenRefusals.has(`${worker}\u0000${message}`)) continue;
      seenRefusals.add(`${worker}\u0000${message}`);
      handlers.refused?.(worker, message);
    }
    if (handlers.progress) {
      const active = (await queue.getActive()).filter((j) => j.id && pending.has(j.id));
      // BullMQ names a worker's connection `<prefix>:<queue>:w:<worker name>`.
      const workers = [...new Set((await queue.getWorkers()).map((w) => String(w.rawname ?? '').split(':w:')[1] ?? '?'))];
      handlers.progress({
        total: expected.size,
        done,
        failed,
        running: active.map((j) => ({ id: j.id!, worker: j.processedBy ?? '?', sinceMs: Date.now() - (j.processedOn ?? Date.now()) })),
        waiting,
        retrying,
        workers,
        donePerWorker,
      });
    }
    if (!pending.size) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
