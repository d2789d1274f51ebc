import type { QueuedStep } from './train-step';

/**
 * Steps queued one ahead of their loss reads. A step's loss is read back while the next step runs:
 * waiting for it before queueing the next would leave a GPU idle for the read's round trip every
 * step. A non-finite loss or gradient already made the optimizer skip that step on the device
 * (globalNormClip), so the variables hold the last finite state when `report` throws, one step late.
 */
export class StepQueue {
  private pending: QueuedStep | undefined;

  constructor(private readonly report: (step: QueuedStep, loss: number) => void) {}

  /** Takes a step just queued on the backend, and reports the one before it. */
  async push(next: QueuedStep): Promise<void> {
    const previous = this.pending;
    this.pending = next;
    if (previous) await this.reportNow(previous);
  }

  /** Reports the step still queued, if any (before an evaluation, a checkpoint, the end). */
  async flush(): Promise<void> {
    const last = this.pending;
    this.pending = undefined;
    if (last) await this.reportNow(last);
  }

  /** Lets a step still queued when training stopped early finish its read, unreported, so its loss tensor is freed. */
  async drain(): Promise<void> {
    const last = this.pending;
    this.pending = undefined;
    await last?.loss.catch(() => undefined);
  }

  private async reportNow(step: QueuedStep): Promise<void> {
    this.report(step, await step.loss);
  }
}
