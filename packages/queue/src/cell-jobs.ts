import { Queue, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';

/**
 * All of deltatune's jobs live under `deltatune:cells:*` in the URL's database. One queue for every
 * grid, so a worker needs only the URL; a job carries everything it runs, and its id is the cell's.
 */
export const QUEUE_PREFIX = 'deltatune';
export const QUEUE_NAME = 'cells';

/** What a job holds: the id (also BullMQ's job id), what it runs, and who enqueued it. */
export interface JobEnvelope<P = unknown> {
  readonly id: string;
  /** Every setting the result depends on, as one comparable string: equal specs give equal results. */
  readonly spec: string;
  /** The deltatune version that enqueued it: a worker of another version refuses the job. */
  readonly version: string;
  /** Files the job reads, by the path it names them and their sha256: a worker whose copy differs refuses. */
  readonly files: Readonly<Record<string, string>>;
  readonly payload: P;
  /** Which enqueue call stored the job (set by `enqueueJobs`): of two collectors racing, the one that added it knows. */
  readonly enqueuedBy?: string;
}

/** What a finished job returns, stored by BullMQ in Redis: the collector needs no shared disk. */
export interface JobOutcome<R = unknown> {
  readonly result: R;
  readonly spec: string;
  readonly version: string;
  /** The worker that ran it (`host:pid`), and how long the job took on it, queue bookkeeping included. */
  readonly worker: string;
  readonly ms: number;
}

/** Where a worker that refused a job says why (`worker name -> message`), for the collector to show. */
export const REFUSALS_KEY = `${QUEUE_PREFIX}:${QUEUE_NAME}:refusals`;

export function openQueue(redis: Redis): Queue<JobEnvelope, JobOutcome> {
  return new Queue<JobEnvelope, JobOutcome>(QUEUE_NAME, { connection: redis as unknown as ConnectionOptions, prefix: QUEUE_PREFIX });
}
