import { Worker, WaitingError, type ConnectionOptions, type Job } from 'bullmq';
import { DeltaTuneError } from '@deltatune/core';
import { openQueue, QUEUE_NAME, QUEUE_PREFIX, REFUSALS_KEY, type JobEnvelope, type JobOutcome } from './cell-jobs';
import { openRedis } from './connection';
import type { QueueUrl } from './queue-url';

export interface QueueWorkerOptions<P, R> {
  readonly url: QueueUrl;
  /** Shown to the collector and stored on each job it runs (`host:pid` by default in the CLI). */
  readonly name: string;
  /** This worker's deltatune version: a job enqueued by another is refused, not run. */
  readonly version: string;
  /**
   * How long a job's lock lasts without renewal. A worker renews it at half this while the job runs;
   * a worker that died (kill -9, machine lost) loses it after this long and its job is retried.
   */
  readonly lockMs?: number;
  /** Return once the queue has had nothing waiting, delayed or running for `idleMs` (default 3 s). */
  readonly exitWhenIdle?: boolean;
  readonly idleMs?: number;
  /** Why this worker cannot run the job as asked (a method it lacks, a file that differs); undefined to run it. */
  check(job: JobEnvelope<P>): string | undefined | Promise<string | undefined>;
  /** Runs the job; `signal` aborts when the lock is lost or the worker is stopped (stop soon, then throw). */
  run(job: JobEnvelope<P>, signal: AbortSignal): Promise<R>;
  log(line: string): void;
  /** Stops the worker: the job in flight goes back to the queue for another (or this one, later). */
  readonly stop?: AbortSignal;
}

export interface QueueWorkerSummary {
  readonly completed: number;
  readonly failed: number;
  /** Set when the worker stopped because it refused a job (the job is back in the queue for another). */
  readonly refused?: string;
}

/**
 * Takes jobs from the queue one at a time until stopped (or idle, with `exitWhenIdle`). A job that
 * throws is retried by BullMQ up to its attempts; one this worker refuses goes back untouched and
 * the worker stops, so a wrong-version fleet cannot churn through a grid failing every cell.
 */
export async function runQueueWorker<P, R>(opts: QueueWorkerOptions<P, R>): Promise<QueueWorkerSummary> {
  const lockMs = opts.lockMs ?? 60_000;
  const redis = await openRedis(opts.url, `deltatune-worker:${opts.name}`);
  let completed = 0;
  let failed = 0;
  let refused: string | undefined;
  let stopping = false;
  // Jobs whose lock went to another worker while this one ran them (it was stalled too long).
  const lockLost = new Set<string>();
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = () => {
      stopping = true;
      resolve();
    };
  });
  opts.stop?.addEventListener('abort', finish, { once: true });
  if (opts.stop?.aborted) finish();

  const lostLock = (id: string | undefined, why: string) =>
    opts.log(`worker ${opts.name}: lost the lock on ${id} (${why}); it is another worker's now, this run is dropped`);

  // A job handed back (refused, or the worker stopping) returns to `wait` at once, its attempts untouched.
  const handBack = async (job: Job<JobEnvelope<P>, JobOutcome<R>>, token: string): Promise<never> => {
    try {
      await job.moveToWait(token);
    } catch (e) {
      // BullMQ refuses without the job's current lock: it went to another worker while this one was stalled.
      lostLock(job.id, (e as Error).message.split('\n')[0]);
    }
    throw new WaitingError();
  };

  const processor = async (job: Job<JobEnvelope<P>, JobOutcome<R>>, token?: string, signal?: AbortSignal): Promise<JobOutcome<R>> => {
    const envelope = job.data;
    const reason =
      envelope.version !== opts.version
        ? `it was queued by deltatune ${envelope.version}, this worker is ${opts.version}`
        : await opts.check(envelope);
    if (reason) {
      refused = `job ${job.id}: ${reason}`;
      await redis.hset(REFUSALS_KEY, opts.name, refused);
      // Paused before the job goes back, so this worker does not take it (or another) again.
      await worker.pause(true);
      finish();
      return handBack(job, token!);
    }
    if (stopping) return handBack(job, token!);
    const started = Date.now();
    opts.log(`worker ${opts.name}: ${job.id} (attempt ${job.attemptsMade + 1} of ${job.opts.attempts ?? 1})`);
    const stop = AbortSignal.any([signal ?? new AbortController().signal, ...(opts.stop ? [opts.stop] : [])]);
    try {
      const result = await opts.run(envelope, stop);
      return { result, spec: envelope.spec, version: opts.version, worker: opts.name, ms: Date.now() - started };
    } catch (e) {
      // Stopped on purpose: the cell is not at fault, so it goes back without using an attempt.
      if (stopping && !lockLost.has(job.id!)) return handBack(job, token!);
      throw e;
    }
  };

  // Referenced by the processor above, which runs only once the worker has started.
  const worker = new Worker<JobEnvelope<P>, JobOutcome<R>>(QUEUE_NAME, processor, {
    connection: redis as unknown as ConnectionOptions,
    prefix: QUEUE_PREFIX,
    name: opts.name,
    concurrency: 1,
    lockDuration: lockMs,
    // Another worker's stalled check finds a dead worker's job once its lock is gone; twice stalled
    // (two workers lost on it) still retries, a third time fails it as a cell that kills workers.
    stalledInterval: lockMs,
    maxStalledCount: 2,
    autorun: false,
  });
  worker.on('completed', (job) => {
    completed++;
    opts.log(`worker ${opts.name}: ${job.id} done (${((job.finishedOn! - job.processedOn!) / 1000).toFixed(1)} s)`);
  });
  worker.on('failed', (job, err) => {
    failed++;
    opts.log(`worker ${opts.name}: ${job?.id ?? '?'} failed: ${err.message.split('\n')[0]}`);
  });
  // The lock went to another worker (this one was stalled too long): stop the run, its result would be dropped.
  worker.on('lockRenewalFailed', (ids) =>
    ids.forEach((id) => {
      lockLost.add(id);
      lostLock(id, 'this process stalled, or Redis was out of reach');
      worker.cancelJob(id, 'the lock on the job was lost');
    }),
  );
  worker.on('error', (e) => !/^could not renew lock/.test(e.message) && opts.log(`worker ${opts.name}: ${e.message.split('\n')[0]}`));

  let idleTimer: NodeJS.Timeout | undefined;
  if (opts.exitWhenIdle) {
    const idleMs = opts.idleMs ?? 3000;
    const queue = openQueue(redis);
    let idleSince = Date.now();
    idleTimer = setInterval(
      () => {
        // Jobs running on other workers count too: a dead worker's job comes back to the queue.
        void queue
          .getJobCounts('wait', 'active', 'delayed', 'prioritized')
          .then((counts) => {
            if (Object.values(counts).some((n) => n > 0)) idleSince = Date.now();
            else if (Date.now() - idleSince >= idleMs) finish();
          })
          .catch(() => undefined);
      },
      Math.min(500, idleMs),
    );
  }

  void worker.run();
  await done;
  if (idleTimer) clearInterval(idleTimer);
  // A job still running when the worker stops goes back through the processor's hand-back.
  worker.cancelAllJobs('the worker is stopping');
  await worker.close();
  await redis.quit().catch(() => redis.disconnect());
  if (refused)
    throw new DeltaTuneError(
      `worker ${opts.name} refused ${refused}; it is back in the queue for another worker`,
      refused.includes('queued by deltatune')
        ? 'run the same deltatune version as the machine that enqueued the grid (deltatune --version on both)'
        : 'give this worker what the job needs (the same --plugin and dataset files as the collector), then start it again',
    );
  return { completed, failed };
}
