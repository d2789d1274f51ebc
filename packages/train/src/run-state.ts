import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { ProgressState, RunCheckpoint } from './run-checkpoint';
import type { TrainStep } from './train-step';

export type LossRecord = { step: number; loss: number; lr: number };
export type EvalRecord = { step: number; metrics: Record<string, number> };

/**
 * Everything a run has done so far, which is exactly what its checkpoint holds: the trained
 * variables and the optimizer (the step's), the losses and evaluations, the best validation score
 * and a snapshot of the variables there. `checkpoint()` and `restore()` are each other's inverse,
 * so a resumed run repeats what an uninterrupted one does.
 */
export class RunState {
  readonly history: LossRecord[] = [];
  readonly evals: EvalRecord[] = [];
  bestStep = 0;
  bestScore: number | null = null;
  evalsWithoutImprovement = 0;
  /** Training seconds before this process took the run over (a resumed run's earlier part). */
  private secondsBefore = 0;
  private best: Tensor[];
  /** The step of the last checkpoint written or resumed from (-1: none); not saved, messages name it. */
  lastCheckpoint = -1;
  readonly fingerprint: string;

  constructor(
    private readonly trainStep: TrainStep,
    readonly settings: Record<string, unknown>,
    private readonly startedAt: number,
  ) {
    this.fingerprint = JSON.stringify(settings);
    this.best = trainStep.variables.map((v) => tf.clone(v));
  }

  /** Steps taken: the optimizer counts them (its bias correction needs the count anyway). */
  get step(): number {
    return this.trainStep.optimizer.step;
  }

  seconds(): number {
    return this.secondsBefore + (Date.now() - this.startedAt) / 1000;
  }

  /** Records a validation at the current step; when its score (higher is better) is the best yet, snapshots the variables. */
  recordEval(metrics: Record<string, number>, score: number): void {
    this.evals.push({ step: this.step, metrics });
    if (this.bestScore === null || score > this.bestScore) {
      this.bestScore = score;
      this.bestStep = this.step;
      this.evalsWithoutImprovement = 0;
      tf.dispose(this.best);
      this.best = this.trainStep.variables.map((v) => tf.clone(v));
      return;
    }
    this.evalsWithoutImprovement++;
  }

  /** The validation metrics at the best step. */
  bestMetrics(): Record<string, number> | undefined {
    return this.evals.find((e) => e.step === this.bestStep)?.metrics;
  }

  /** Puts the best validation state back into the trained variables. */
  restoreBest(): void {
    this.trainStep.variables.forEach((v, i) => v.assign(this.best[i]));
  }

  progress(): ProgressState {
    return {
      step: this.step,
      fingerprint: this.fingerprint,
      settings: this.settings,
      bestStep: this.bestStep,
      bestScore: this.bestScore,
      evalsWithoutImprovement: this.evalsWithoutImprovement,
      history: this.history,
      evals: this.evals,
      seconds: this.seconds(),
    };
  }

  /** The checkpoint payload, over the run's live tensors (a store reads them before the next step). */
  checkpoint(): RunCheckpoint {
    return {
      state: this.progress(),
      trained: this.trainStep.variables,
      optimizer: [...this.trainStep.optimizer.state().values()],
      best: this.best,
    };
  }

  /** Continues from a checkpoint read back; takes its tensors over (frees or keeps them). */
  restore(c: RunCheckpoint): void {
    const { variables, optimizer } = this.trainStep;
    variables.forEach((v, i) => v.assign(c.trained[i]));
    optimizer.loadState(new Map([...optimizer.state().keys()].map((k, i) => [k, c.optimizer[i]])), c.state.step);
    tf.dispose([...this.best, ...c.trained, ...c.optimizer]);
    this.best = [...c.best];
    this.bestStep = c.state.bestStep;
    this.bestScore = c.state.bestScore;
    this.evalsWithoutImprovement = c.state.evalsWithoutImprovement;
    this.history.splice(0, this.history.length, ...c.state.history);
    this.evals.splice(0, this.evals.length, ...c.state.evals);
    this.secondsBefore = c.state.seconds;
    this.lastCheckpoint = c.state.step;
  }

  dispose(): void {
    tf.dispose(this.best);
  }
}
