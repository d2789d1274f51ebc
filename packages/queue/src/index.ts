export { parseQueueUrl, maskPassword, type QueueUrl } from './queue-url';
export { openRedis, unreachable } from './connection';
export { openQueue, QUEUE_NAME, QUEUE_PREFIX, REFUSALS_KEY, type JobEnvelope, type JobOutcome } from './cell-jobs';
export { enqueueJobs, type Conflict, type EnqueueOptions, type EnqueueReport } from './enqueue';
export { followJobs, type FollowHandlers, type QueueSnapshot, type RunningJob } from './follow';
export { runQueueWorker, type QueueWorkerOptions, type QueueWorkerSummary } from './worker';
