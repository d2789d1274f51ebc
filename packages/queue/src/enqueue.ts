import { randomUUID } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import type { JobEnvelope, JobOutcome } from './cell-jobs';

export interface EnqueueOptions {
  /** Runs a job gets before it counts as failed (a lost worker's run is retried apart from these). */
  readonly attempts: number;
  /** The first retry's delay; each next one doubles it. */
  readonly backoffMs: number;
  /** Replace jobs that ran (or wait to run) other settings; without it they are conflicts. */
  readonly overwrite: boolean;
}

/** A job id already in the queue with other settings or from another version. */
export interface Conflict {
  readonly id: string;
  readonly state: string;
  readonly why: string;
}

export interface EnqueueReport {
  readonly added: readonly string[];
  /** Already waiting, running or scheduled for a retry: followed as they are. */
  readonly queued: readonly string[];
  /** Finished earlier (another collector, or a run that was interrupted): collected, not rerun. */
  readonly completed: readonly string[];
  /** Had failed all their attempts: retried from the start. */
  readonly retried: readonly string[];
  readonly conflicts: readonly Conflict[];
}

/**
 * Puts each job in the queue unless it is there: the job id is the cell id, so enqueueing twice (or
 * from two machines at once) adds nothing. A job found with another spec or version is a conflict,
 * never silently mixed in; with `overwrite` it is replaced unless a worker holds it right now.
 */
export async function enqueueJobs(
  queue: Queue<JobEnvelope, JobOutcome>,
  jobs: readonly JobEnvelope[],
  opts: EnqueueOptions,
): Promise<EnqueueReport> {
  const report = {
    added: [] as string[],
    queued: [] as string[],
    completed: [] as string[],
    retried: [] as string[],
    conflicts: [] as Conflict[],
  };
  const me = randomUUID();
  const add = (job: JobEnvelope) =>
    queue.add(
      'cell',
      { ...job, enqueuedBy: me },
      {
        jobId: job.id,
        attempts: opts.attempts,
        backoff: { type: 'exponential', delay: opts.backoffMs },
        // Finished jobs hold the results: kept until the grid is collected (and after, for a rerun).
        removeOnComplete: false,
        removeOnFail: false,
      },
    );
  for (const job of jobs) {
    const existing = await queue.getJob(job.id);
    if (!existing) {
      await add(job);
      // Two collectors adding the same id at once: BullMQ keeps the first, so check which one won.
      const stored = await queue.getJob(job.id);
      const why = stored && differs(stored, job);
      if (why) report.conflicts.push({ id: job.id, state: await stored.getState(), why });
      else if (stored?.data.enqueuedBy === me) report.added.push(job.id);
      else report.queued.push(job.id);
      continue;
    }
    const state = await existing.getState();
    const why = differs(existing, job);
    if (why) {
      if (opts.overwrite && state !== 'active') {
        await existing.remove();
        await add(job);
        report.added.push(job.id);
      } else {
        report.conflicts.push({ id: job.id, state, why: opts.overwrite ? `${why}, and a worker is running it now` : why });
      }
    } else if (state === 'completed') {
      report.completed.push(job.id);
    } else if (state === 'failed') {
      await existing.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      report.retried.push(job.id);
    } else {
      report.queued.push(job.id);
    }
  }
  return report;
}

function differs(stored: Job<JobEnvelope, JobOutcome>, job: JobEnvelope): string | undefined {
  const data = stored.data;
  if (data.version !== job.version) return `it was queued by deltatune ${data.version}, this is ${job.version}`;
  if (data.spec !== job.spec) return 'it was queued with other settings';
  if (JSON.stringify(data.files) !== JSON.stringify(job.files)) return 'it was queued with other file contents';
  return undefined;
}
