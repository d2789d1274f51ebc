/** Examples per second since training (in this process) began, and the time left at that rate. */
export class Throughput {
  private readonly startedAt = Date.now();

  constructor(
    private readonly firstStep: number,
    private readonly batchSize: number,
    private readonly totalSteps: number,
  ) {}

  at(step: number): { examplesPerSecond: number; etaSeconds: number } {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const rate = ((step - this.firstStep) * this.batchSize) / Math.max(elapsed, 1e-9);
    return { examplesPerSecond: rate, etaSeconds: ((this.totalSteps - step) * this.batchSize) / Math.max(rate, 1e-9) };
  }
}
