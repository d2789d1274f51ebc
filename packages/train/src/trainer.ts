import { stepRows, trainingBatch } from './batches';
import { assertNotDiverged } from './divergence';
import { cacheFeatures, type FeatureCache } from './feature-cache';
import { ClassificationHead } from './head';
import type { ClassificationMetrics, LmMetrics } from './metrics';
import { RunEvaluation } from './run-evaluation';
import { runSettings } from './run-settings';
import { RunState } from './run-state';
import { StepQueue } from './step-queue';
import { tokenizeTask } from './task-splits';
import { Throughput } from './throughput';
import type { TrainOptions, TrainResult } from './train-options';
import { createTrainStep, type QueuedStep, type TrainStep } from './train-step';
import { validateTrainOptions } from './validate-options';
import { checkVocabulary } from './vocabulary';

export type { TaskKind, TrainEvent, TrainOptions, TrainResult } from './train-options';

/**
 * Trains the trainable deltas (and a classification head) on a dataset. Deterministic for a seed:
 * batch order comes from the seed and the epoch, so a resumed run repeats exactly what an
 * uninterrupted one does. The best validation state is kept and restored before the test split.
 * Needs no file system: checkpoints go to `o.checkpoints` (`@deltatune/train/node`'s `train` makes
 * a folder store from `runDir`).
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o);
  const task = o.task ?? 'classification';
  const emit = o.onEvent ?? (() => {});
  const startedAt = Date.now();
  const padId = o.tokenizer.padId;
  emit({ type: 'phase', name: 'tokenize' });
  const { dropped, ...splits } = tokenizeTask(o, emit);
  checkVocabulary(o.backbone, [splits.train, splits.validation, splits.test]);
  const rows = splits.train.ids.length;
  const totalSteps = o.steps ?? Math.max(1, Math.round((o.epochs ?? 1) * Math.ceil(rows / o.batchSize)));
  const evalEvery = o.evalEvery ?? 0;
  const checkpointEvery = o.checkpointEvery ?? (evalEvery || totalSteps);
  const store = o.checkpoints;
  // A head made here is the caller's on success; on failure nobody else holds it.
  const ownHead =
    task === 'classification' && !o.head ? new ClassificationHead(o.backbone.hiddenSize, o.dataset.labels, o.seed) : undefined;
  const head = task === 'classification' ? (o.head ?? ownHead) : undefined;

  let step: TrainStep | undefined;
  let features: FeatureCache | undefined;
  let run: RunState | undefined;
  let queue: StepQueue | undefined;
  let succeeded = false;
  // Whatever happens (a NaN stop, a kill signal turned error), the optimizer state, snapshots and
  // feature caches are freed and the base parameters frozen again.
  try {
    step = createTrainStep({ ...o, head, totalSteps });
    if (!step.trainsBackbone && task === 'classification') features = cacheFeatures(o.backbone, splits, o.batchSize, padId, emit);
    const evaluation = new RunEvaluation({ ...o, task, head, ...splits, validationFeatures: features?.validation, padId });
    const state = (run = new RunState(step, runSettings(o, step.variables), startedAt));

    if (o.resume && store) {
      const saved = await store.read({ fingerprint: state.fingerprint, settings: state.settings });
      if (saved) {
        state.restore(saved);
        emit({ type: 'resumed', step: state.step });
      } else emit({ type: 'fresh', dir: store.location });
    }

    const lastCheckpoint = () =>
      store && state.lastCheckpoint >= 0 ? { step: state.lastCheckpoint, location: store.location } : undefined;
    const throughput = new Throughput(state.step, o.batchSize, totalSteps);
    queue = new StepQueue(({ step: at, lr }: QueuedStep, loss: number) => {
      const firstLoss = state.history[0]?.loss ?? loss;
      assertNotDiverged(loss, at, lr, {
        firstLoss,
        factor: o.divergenceFactor ?? 100,
        peakLearningRate: o.learningRate,
        checkpoint: lastCheckpoint(),
      });
      state.history.push({ step: at, loss, lr });
      emit({ type: 'step', step: at, total: totalSteps, loss, lr, ...throughput.at(at) });
    });
    /** Validates; true when early stopping says to stop. */
    const validate = async (): Promise<boolean> => {
      const metrics = await evaluation.validate();
      state.recordEval(metrics, evaluation.score(metrics));
      emit({ type: 'eval', step: state.step, metrics });
      return o.patience !== undefined && state.evalsWithoutImprovement >= o.patience;
    };
    const saveCheckpoint = async () => {
      if (!store) return;
      state.lastCheckpoint = state.step;
      await store.write(state.checkpoint());
      emit({ type: 'checkpoint', step: state.step, dir: store.location });
    };

    emit({ type: 'phase', name: 'train', total: totalSteps });
    let stopped = false;
    const aborted = () => o.signal?.aborted === true;
    while (state.step < totalSteps && !stopped && !aborted()) {
      // On wasm and cpu a step's reads resolve as microtasks, so the loop never lets an event in: a
      // worker would not see its stop message until the end. A macrotask turn per step lets it.
      if (o.signal) await new Promise((resolve) => setTimeout(resolve, 0));
      const batch = trainingBatch(splits.train, stepRows(o.seed, state.step, rows, o.batchSize), padId, features?.train);
      const queued = step.queue(batch.batch);
      batch.dispose();
      await queue.push(queued);
      const at = state.step;
      const evaluate = evalEvery > 0 && at % evalEvery === 0 && at < totalSteps;
      const checkpoint = at % checkpointEvery === 0 && at < totalSteps;
      if (evaluate || checkpoint) await queue.flush();
      if (evaluate) stopped = await validate();
      if (checkpoint) await saveCheckpoint();
    }
    await queue.flush();
    if (state.evals.at(-1)?.step !== state.step) await validate();
    await saveCheckpoint();

    // Continue from the best validation state.
    state.restoreBest();
    emit({ type: 'phase', name: 'test' });
    const validation = state.bestMetrics() as unknown as ClassificationMetrics | LmMetrics;
    const test = await evaluation.test();
    succeeded = true;
    return {
      steps: state.step,
      seconds: state.seconds(),
      bestStep: state.bestStep,
      history: state.history,
      evals: state.evals,
      validation,
      test,
      head,
      trainedParameters: step.trainedParameters,
      ...(dropped ? { dropped } : {}),
      ...(state.step < totalSteps && aborted() ? { stopped: true } : {}),
    };
  } finally {
    await queue?.drain();
    run?.dispose();
    features?.dispose();
    step?.dispose();
    if (!succeeded) ownHead?.dispose();
  }
}
