import { DeltaTuneError } from '@deltatune/core';

export interface DivergenceContext {
  /** The first step's loss: the scale a loss explodes against. */
  readonly firstLoss: number;
  /** A loss above this many times the first (at least 1) is divergence. */
  readonly factor: number;
  /** The run's peak learning rate, for the fix. */
  readonly peakLearningRate: number;
  /** The last good checkpoint, when one was kept. */
  readonly checkpoint?: { readonly step: number; readonly location: string };
}

/**
 * Throws when a step's loss says training diverged: NaN or infinite, or far above the first
 * step's. An exploding run (lr 1e6: loss 1e7) stays finite for a while, and is as lost as a NaN one.
 */
export function assertNotDiverged(loss: number, step: number, lr: number, c: DivergenceContext): void {
  if (!Number.isFinite(loss)) {
    throw new DeltaTuneError(
      `training diverged: the loss is ${loss} at step ${step} (learning rate ${lr.toExponential(2)})`,
      `lower --lr or set --clip-norm; ${
        c.checkpoint ? `the last good checkpoint (step ${c.checkpoint.step}) is in ${c.checkpoint.location}` : 'no checkpoint was kept yet'
      }`,
    );
  }
  const limit = c.factor * Math.max(c.firstLoss, 1);
  if (loss > limit) {
    throw new DeltaTuneError(
      `training diverged: the loss is ${loss.toPrecision(4)} at step ${step}, over ${
        c.factor
      }x the first step's ${c.firstLoss.toPrecision(4)} (learning rate ${lr.toExponential(2)})`,
      `start afresh with a lower --lr and --overwrite (this run's peak was ${
        c.peakLearningRate
      }; LoRA and adapters usually train well at 1e-4 to 3e-3)${
        c.checkpoint ? `; the last good checkpoint (step ${c.checkpoint.step}) is kept in ${c.checkpoint.location}` : ''
      }`,
    );
  }
}
