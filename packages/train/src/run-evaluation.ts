import type { Tensor2D } from '@tensorflow/tfjs-core';
import type { Backbone } from '@deltatune/core';
import type { TokenizedSplit } from './batches';
import { evaluateClassification, evaluateFeatures, evaluateLm } from './evaluate';
import type { ClassificationHead } from './head';
import type { ClassificationMetrics, LmMetrics } from './metrics';
import type { TaskKind } from './train-options';

export interface RunEvaluationOptions {
  readonly backbone: Backbone;
  readonly task: TaskKind;
  /** Classification's head. */
  readonly head?: ClassificationHead;
  readonly validation: TokenizedSplit;
  readonly test: TokenizedSplit;
  /** The validation split's pooled features, when the backbone is frozen (the same every time). */
  readonly validationFeatures?: Tensor2D;
  readonly batchSize: number;
  readonly padId: number;
}

/** How a run is scored: validation during training (the best state, early stopping), test at the end. */
export class RunEvaluation {
  constructor(private readonly o: RunEvaluationOptions) {}

  async validate(): Promise<Record<string, number>> {
    const { backbone, head, validation, batchSize, padId, validationFeatures } = this.o;
    if (this.o.task !== 'classification') return { ...(await evaluateLm(backbone, validation, batchSize, padId)) };
    if (validationFeatures) return { ...(await evaluateFeatures(validationFeatures, validation.labels, head!)) };
    return { ...(await evaluateClassification(backbone, head!, validation, batchSize, padId)) };
  }

  /** Higher is better: accuracy for classification, -loss for LM and SFT (the completions' loss). */
  score(metrics: Record<string, number>): number {
    return this.o.task === 'classification' ? metrics.accuracy : -metrics.loss;
  }

  async test(): Promise<ClassificationMetrics | LmMetrics> {
    const { backbone, head, test, batchSize, padId } = this.o;
    return this.o.task !== 'classification'
      ? await evaluateLm(backbone, test, batchSize, padId)
      : await evaluateClassification(backbone, head!, test, batchSize, padId);
  }
}
