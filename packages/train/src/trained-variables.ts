import type { Variable } from '@tensorflow/tfjs-core';
import { DeltaTuneError, type Backbone, type Delta } from '@deltatune/core';
import type { ClassificationHead } from './head';

/**
 * Whether a run trains this delta: `trainable`, switched on and not merged. A switched-off or
 * merged delta is not in the forward pass, so its gradient is zero, and AdamW's weight decay would
 * still shrink it step by step (a merged one's values would then no longer be what is folded into the base).
 */
export function isTrained(delta: Delta): boolean {
  return delta.trainable && delta.active && !delta.merged;
}

/** What a training step updates, in the order the optimizer and checkpoints keep. */
export interface TrainedVariables {
  readonly deltas: readonly Delta[];
  /** The trained deltas' variables, then the base parameters (full fine-tuning), then the head's. */
  readonly variables: readonly Variable[];
  /** The base parameters, when fully fine-tuning: frozen outside a step's lifetime. */
  readonly base: readonly Variable[];
  /** Whether anything before the head trains (else the backbone's output is the same every epoch). */
  readonly trainsBackbone: boolean;
}

export function trainedVariables(o: {
  readonly backbone: Backbone;
  readonly deltas?: readonly Delta[];
  readonly fullFineTune?: boolean;
  readonly head?: ClassificationHead;
}): TrainedVariables {
  const deltas = (o.deltas ?? []).filter(isTrained);
  const deltaVariables = deltas.flatMap((d) => [...d.variables.values()]);
  const base = o.fullFineTune ? [...o.backbone.parameters.values()] : [];
  const variables = [...new Set([...deltaVariables, ...base, ...(o.head?.variables ?? [])])];
  if (variables.length === 0)
    throw new DeltaTuneError(
      'nothing to train: no trainable delta, head or base parameter',
      'attach a method (--method lora) or use the classification task',
    );
  return { deltas, variables, base, trainsBackbone: deltaVariables.length > 0 || base.length > 0 };
}

/** Each trained variable's learning rate relative to `learningRate` (1 unless its delta has its own). */
export function learningRateScales(
  trained: TrainedVariables,
  learningRate: number,
  own: Readonly<Record<string, number>> = {},
  attached: readonly Delta[] = [],
): number[] {
  for (const [name, lr] of Object.entries(own)) {
    if (!trained.deltas.some((d) => d.name === name)) {
      const delta = attached.find((d) => d.name === name);
      const why = !delta || !delta.trainable ? '' : delta.merged ? ' (it is merged)' : ' (it is switched off)';
      throw new DeltaTuneError(
        `a learning rate was given for delta "${name}", which is not a trained delta here${why}`,
        `trained deltas: ${trained.deltas.map((d) => d.name).join(', ') || 'none'}`,
      );
    }
    if (!(lr > 0) || !Number.isFinite(lr))
      throw new DeltaTuneError(`the learning rate for delta "${name}" must be a positive number, got ${lr}`, 'e.g. --delta-lr prompt=0.3');
  }
  const scaleOf = new Map<Variable, number>();
  for (const d of trained.deltas) {
    const lr = own[d.name];
    if (lr !== undefined) for (const v of d.variables.values()) scaleOf.set(v, lr / learningRate);
  }
  return trained.variables.map((v) => scaleOf.get(v) ?? 1);
}
