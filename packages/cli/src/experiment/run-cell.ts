import * as tf from '@tensorflow/tfjs-core';
import { attach, countParameters, getMethod, type Backbone, type Delta } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import {
  ClassificationHead,
  limitDataset,
  train,
  type ClassificationMetrics,
  type Dataset,
  type TrainResult,
} from '@deltatune/train';
import { loadDataset } from '@deltatune/train/node';
import { gridDeltaOptions, type Cell } from './grid';

export interface CellResult {
  readonly id: string;
  readonly method: string;
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

/** Runs one cell on a loaded backbone; every delta is detached afterwards. */
export async function runCell(
  backbone: Backbone,
  tokenizer: TextTokenizer,
  cell: Cell,
  target: number,
  model = 'use-lite',
): Promise<CellResult> {
  const key = JSON.stringify(cell.task);
  if (!datasets.has(key)) datasets.set(key, limitDataset(loadDataset(cell.task.dataset), cell.task.limits ?? {}));
  const dataset = datasets.get(key)!;
  const { method, budget, seed } = cell;
  const deltas: Delta[] = (method.deltas ?? []).map((d, i) => {
    const m = getMethod(d.method);
    return attach(backbone, m.create({ seed, ...gridDeltaOptions(m, d) }), `${d.method}_${i}`);
  });
  const start = Date.now();
  let peakBytes = 0;
  const onEvent = () => {
    peakBytes = Math.max(peakBytes, tf.memory().numBytes);
  };
  // A delta's own learning rate, for the stages that train it.
  const ownRates = (trainable: readonly Delta[]) =>
    Object.fromEntries(
      (method.deltas ?? []).flatMap((d, i) => (d.learningRate && trainable.includes(deltas[i]) ? [[deltas[i].name, d.learningRate]] : [])),
    );
  const common = {
    backbone,
    tokenizer,
    dataset,
    batchSize: budget.batchSize,
    maxLength: budget.maxLength,
    learningRate: method.learningRate ?? budget.learningRate,
    evalEvery: budget.evalEvery,
    warmupSteps: Math.round(budget.steps * 0.1),
    seed,
    onEvent,
  };
  // Full fine-tuning changes the backbone itself: keep its weights to put back for the next cell.
  const saved = method.full ? [...backbone.parameters.values()].map((v) => tf.clone(v)) : [];
  try {
    const head = new ClassificationHead(backbone.hiddenSize, dataset.labels, seed);
    const stages: Array<{ trainable: Delta[]; steps: number }> =
      method.schedule === 'sequential' && deltas.length > 1
        ? deltas.map((d, i) => ({
            trainable: [d],
            steps: Math.floor(budget.steps / deltas.length) + (i < budget.steps % deltas.length ? 1 : 0),
          }))
        : [{ trainable: deltas, steps: budget.steps }];
    const curve: Array<[number, number]> = [];
    let offset = 0;
    let last: TrainResult | undefined;
    for (const stage of stages) {
      for (const d of deltas) d.trainable = stage.trainable.includes(d);
      last = await train({
        ...common,
        deltas,
        fullFineTune: method.full,
        steps: stage.steps,
        head,
        deltaLearningRates: ownRates(stage.trainable),
      });
      for (const e of last.evals) curve.push([offset + e.step, e.metrics.accuracy]);
      offset += stage.steps;
    }
    for (const d of deltas) d.trainable = true;
    const counts = countParameters(backbone, head.variables);
    const trainable = method.full ? counts.base + counts.extra : counts.trainable;
    const test = last!.test as ClassificationMetrics;
    const reached = curve.find(([, acc]) => acc >= target);
    head.dispose();
    return {
      id: cell.id,
      method: method.name,
      task: cell.task.dataset,
      seed,
      budget: budget.name,
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
    for (const d of deltas) d.detach();
    [...backbone.parameters.values()].forEach((v, i) => saved[i] && v.assign(saved[i]));
    tf.dispose(saved);
  }
}
