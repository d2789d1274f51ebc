import { runSpec, type RunSpec } from '../run-spec';
import { gridOptionStrings, type Cell } from './grid';

/** A grid cell as the RunSpec `train` would build for the same run: the same names, defaults and delta learning rates. */
export function cellRunSpec(cell: Cell, model: string): RunSpec {
  const { method, task, budget, seed } = cell;
  return runSpec({
    model,
    data: { dataset: task.dataset, limits: task.limits ?? {} },
    deltas: {
      create: (method.deltas ?? []).map((d) => ({ name: d.method, options: gridOptionStrings(d), learningRate: d.learningRate })),
      schedule: method.schedule,
    },
    train: {
      learningRate: method.learningRate ?? budget.learningRate,
      batchSize: budget.batchSize,
      maxLength: budget.maxLength,
      evalEvery: budget.evalEvery,
      steps: budget.steps,
      // A budget sets its length, so its warm-up is a share of it rather than train's fixed 10 steps.
      warmupSteps: Math.round(budget.steps * 0.1),
      seed,
      fullFineTune: method.full,
    },
    label: method.name,
  });
}
