import * as tf from '@tensorflow/tfjs-core';
import type { Scalar, Tensor, Variable } from '@tensorflow/tfjs-core';
import { DeltaTuneError, type BackboneInputs } from '@deltatune/core';
// Training differentiates through tfjs ops: backends registers tfjs's gradients (tfjs-core alone has
// none) and the fused kernels, on import.
import '@deltatune/backends';
import { causalLmLoss, crossEntropy, tokenLogits } from './head';
import { lowMemoryVariableGrads } from './low-memory-grads';
import { AdamW, ADAMW_DEFAULTS, globalNormClip } from './optimizer';
import { learningRate } from './schedule';
import type { TrainOptions } from './train-options';
import { learningRateScales, trainedVariables } from './trained-variables';

/** The run's settings a step depends on: the trainer's own options, plus the head and the run's length. */
export type TrainStepOptions = Pick<
  TrainOptions,
  | 'backbone'
  | 'task'
  | 'deltas'
  | 'fullFineTune'
  | 'head'
  | 'learningRate'
  | 'deltaLearningRates'
  | 'schedule'
  | 'warmupSteps'
  | 'weightDecay'
  | 'clipNorm'
> & {
  /** The steps the run will take, where the learning-rate schedule decays to 0. */
  readonly totalSteps: number;
};

/** One step's examples. The caller owns (and disposes) its tensors; the step only reads them. */
export type StepBatch =
  /**
   * Token ids through the backbone and its deltas; `labels` for classification; `lossMask`
   * (`[batch, seq]`, 1 on the tokens the loss counts) for instruction tuning.
   */
  | { readonly inputs: BackboneInputs; readonly labels?: Tensor; readonly lossMask?: Tensor }
  /** The head over pooled features cached from a frozen backbone (`trainsBackbone` false). */
  | { readonly features: Tensor; readonly labels: Tensor };

/** A step queued on the backend. */
export interface QueuedStep {
  /** Its number, from 1 (the optimizer's count: a resumed run continues it). */
  readonly step: number;
  readonly lr: number;
  /** Its loss, read back from the device (the loss tensor is freed once read). */
  readonly loss: Promise<number>;
}

export interface TrainStep {
  /** What it updates: trained deltas' variables, base parameters (full fine-tuning), the head's. */
  readonly variables: readonly Variable[];
  readonly optimizer: AdamW;
  readonly trainedParameters: number;
  /** False when only the head trains: the backbone's pooled output is then the same every epoch. */
  readonly trainsBackbone: boolean;
  /**
   * Queues the next step on the backend and returns at once: gradients (zero for a variable the
   * loss does not reach), the global-norm clip folded into AdamW at the schedule's learning rate,
   * and a read of the loss started behind it. A non-finite loss or gradient skips the update on the
   * device, so steps can be queued before the previous loss is known.
   */
  queue(batch: StepBatch): QueuedStep;
  /** Frees the optimizer's state and freezes the base parameters again. */
  dispose(): void;
}

/**
 * The training step, as the trainer takes it (and `deltatune bench` times it). Choosing what
 * trains (and thawing the base parameters for full fine-tuning) happens here, once.
 */
export function createTrainStep(o: TrainStepOptions): TrainStep {
  const task = o.task ?? 'classification';
  const head = task === 'classification' ? o.head : undefined;
  if (task === 'classification' && !head)
    throw new DeltaTuneError('a classification step needs a head', 'pass head: new ClassificationHead(hiddenSize, labels, seed)');
  const trained = trainedVariables({ ...o, head });
  const scales = learningRateScales(trained, o.learningRate, o.deltaLearningRates, o.deltas);
  const variables = trained.variables;
  for (const v of trained.base) v.trainable = true;
  const optimizer = new AdamW(variables, { ...ADAMW_DEFAULTS, weightDecay: o.weightDecay ?? 0 }, scales);

  const lossOf = (batch: StepBatch): Tensor => {
    if ('features' in batch) return crossEntropy(head!.logits(batch.features), batch.labels);
    const out = o.backbone.forward(batch.inputs, { training: true });
    if (task === 'lm' || task === 'sft')
      return causalLmLoss(
        tokenLogits(out),
        batch.inputs.inputIds,
        batch.inputs.attentionMask,
        'lossMask' in batch ? batch.lossMask : undefined,
      );
    if (!batch.labels) throw new DeltaTuneError('a classification batch needs labels', 'pass labels: an int32 tensor, one per row');
    return crossEntropy(head!.logits(out.pooled), batch.labels);
  };

  return {
    variables,
    optimizer,
    trainedParameters: variables.reduce((n, v) => n + v.size, 0),
    trainsBackbone: trained.trainsBackbone,
    queue(batch) {
      const step = optimizer.step + 1;
      const lr = learningRate(step, o.learningRate, o.warmupSteps ?? 0, o.totalSteps, o.schedule ?? 'linear');
      const { value, grads } = lowMemoryVariableGrads(() => lossOf(batch) as Scalar, [...variables]);
      const ordered = variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
      const clip = globalNormClip(ordered, o.clipNorm ?? 1, value);
      optimizer.apply(ordered, lr, clip.factor);
      tf.dispose([...ordered, clip.factor, clip.norm]);
      return { step, lr, loss: readLoss(value) };
    },
    dispose() {
      optimizer.dispose();
      for (const v of trained.base) v.trainable = false;
    },
  };
}

/**
 * Asking for the data now queues its copy right behind the step's work. Marked handled: a failed
 * read is thrown where the loss is awaited, not as an unhandled rejection in between.
 */
function readLoss(loss: Tensor): Promise<number> {
  const value = loss
    .data()
    .then((d) => d[0])
    .finally(() => loss.dispose());
  value.catch(() => undefined);
  return value;
}
