import * as tf from '@tensorflow/tfjs-core';
import { countParameters, type Backbone, type Delta } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { ClassificationHead, limitDataset, train, type ClassificationMetrics, type Dataset, type TrainResult } from '@deltatune/train';
import { loadDataset } from '@deltatune/train/node';
import { attachRunDeltas, summarizeDeltas, type DeltaSummary } from '../run-deltas';
import { cellRunSpec } from './cell-run-spec';
import type { Cell } from './grid';

export interface CellResult {
  readonly id: string;
  readonly method: string;
  /** Each delta by the name it got, as `train` names it (the method's, then `_2`...), and its own learning rate. */
  readonly deltas?: readonly DeltaSummary[];
  readonly task: string;
  readonly seed: number;
  readonly budget: string;
  readonly trainableParameters: number;
  readonly trainablePercent: number;
  readonly validationAccuracy: number;
  readonly testAccuracy: number;
  readonly testMacroF1: number;
  readonly testLoss: number;
  /** Steps until validation accuracy first reached the grid's target; null if it never did. */
  readonly stepsToTarget: number | null;
  readonly seconds: number;
  readonly peakBytes: number;
  /** Validation accuracy by step (the convergence curve). */
  readonly curve: ReadonlyArray<readonly [number, number]>;
  /** What the cell ran (method, task, seed, budget): a rerun with an edited grid recomputes cells that changed. */
  readonly spec?: string;
}

/** The settings a cell's result depends on, as one comparable string. */
export function cellSpec(cell: Cell, model: string, target: number): string {
  return JSON.stringify({ model, target, method: cell.method, task: cell.task, seed: cell.seed, budget: cell.budget });
}

const datasets = new Map<string, Dataset>();

/**
 * Runs one cell on a loaded backbone; every delta is detached afterwards. An aborted `signal` (a
 * queue worker stopping, or losing its job) ends the cell after the step in flight, with an error:
 * a cell cut short has no result.
 */
export async function runCell(
  backbone: Backbone,
  tokenizer: TextTokenizer,
  cell: Cell,
  target: number,
  model = 'use-lite',
  signal?: AbortSignal,
): Promise<CellResult> {
  const spec = cellRunSpec(cell, model);
  const key = JSON.stringify(spec.data);
  if (!datasets.has(key)) datasets.set(key, limitDataset(loadDataset(spec.data.dataset), spec.data.limits));
  const dataset = datasets.get(key)!;
  const runDeltas = attachRunDeltas(backbone, spec, tokenizer);
  const deltas = runDeltas.created;
  // A cell's grid entry loads no saved delta, but a RunSpec may: attached, frozen, detached like the rest.
  const attached = [...runDeltas.frozen, ...deltas];
  const start = Date.now();
  let peakBytes = 0;
  const onEvent = () => {
    peakBytes = Math.max(peakBytes, tf.memory().numBytes);
  };
  // A delta's own learning rate, for the stages that train it (the trainer refuses a rate for a delta it does not train).
  const ownRates = (trainable: readonly Delta[]) =>
    Object.fromEntries(
      trainable.flatMap((d) => (runDeltas.learningRates[d.name] === undefined ? [] : [[d.name, runDeltas.learningRates[d.name]]])),
    );
  // Full fine-tuning changes the backbone itself: keep its weights to put back for the next cell.
  const saved = spec.train.fullFineTune ? [...backbone.parameters.values()].map((v) => tf.clone(v)) : [];
  try {
    const head = new ClassificationHead(backbone.hiddenSize, dataset.labels, spec.train.seed);
    const steps = spec.train.steps!;
    const stages: Array<{ trainable: readonly Delta[]; steps: number }> =
      spec.deltas.schedule === 'sequential' && deltas.length > 1
        ? deltas.map((d, i) => ({
            trainable: [d],
            steps: Math.floor(steps / deltas.length) + (i < steps % deltas.length ? 1 : 0),
          }))
        : [{ trainable: deltas, steps }];
    const curve: Array<[number, number]> = [];
    let offset = 0;
    let last: TrainResult | undefined;
    for (const stage of stages) {
      for (const d of deltas) d.trainable = stage.trainable.includes(d);
      last = await train({
        ...spec.train,
        backbone,
        tokenizer,
        dataset,
        deltas: attached,
        steps: stage.steps,
        head,
        deltaLearningRates: ownRates(stage.trainable),
        onEvent,
        signal,
      });
      if (signal?.aborted) throw new Error(`cell ${cell.id} stopped at step ${offset + last.steps}: ${String(signal.reason ?? 'aborted')}`);
      for (const e of last.evals) curve.push([offset + e.step, e.metrics.accuracy]);
      offset += stage.steps;
    }
    for (const d of deltas) d.trainable = true;
    const counts = countParameters(backbone, head.variables);
    const trainable = spec.train.fullFineTune ? counts.base + counts.extra : counts.trainable;
    const test = last!.test as ClassificationMetrics;
    const reached = curve.find(([, acc]) => acc >= target);
    head.dispose();
    return {
      id: cell.id,
      method: cell.method.name,
      deltas: summarizeDeltas(runDeltas),
      task: cell.task.dataset,
      seed: cell.seed,
      budget: cell.budget.name,
      trainableParameters: trainable,
      trainablePercent: (100 * trainable) / counts.total,
      validationAccuracy: (last!.validation as ClassificationMetrics).accuracy,
      testAccuracy: test.accuracy,
      testMacroF1: test.macroF1,
      testLoss: test.loss,
      stepsToTarget: reached ? reached[0] : null,
      seconds: (Date.now() - start) / 1000,
      peakBytes,
      curve,
      spec: cellSpec(cell, model, target),
    };
  } finally {
    for (const d of attached) d.detach();
    [...backbone.parameters.values()].forEach((v, i) => saved[i] && v.assign(saved[i]));
    tf.dispose(saved);
  }
}
