import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { createRng, DeltaTuneError, permutation, type Backbone, type Delta } from '@deltatune/core';
// Training differentiates through tfjs ops: backends registers tfjs's gradients (tfjs-core alone has
// none) and the fused kernels, on import.
import '@deltatune/backends';
import { lowMemoryVariableGrads } from './low-memory-grads';
import type { TextTokenizer } from '@deltatune/models';
import { disposeBatch, makeBatch, tokenizeSplit, type TokenizedSplit } from './batches';
import type { Dataset } from './datasets/types';
import { evaluateClassification, evaluateFeatures, evaluateLm, pooledFeatures } from './evaluate';
import { causalLmLoss, ClassificationHead, crossEntropy } from './head';
import type { ClassificationMetrics, LmMetrics } from './metrics';
import { AdamW, ADAMW_DEFAULTS, globalNormClip } from './optimizer';
import { readRunCheckpoint, writeRunCheckpoint, type ProgressState } from './run-checkpoint';
import { learningRate, type ScheduleKind } from './schedule';
import { validateTrainOptions } from './validate-options';

export type TaskKind = 'classification' | 'lm';

export interface TrainOptions {
  readonly backbone: Backbone;
  readonly tokenizer: TextTokenizer;
  readonly dataset: Dataset;
  readonly task?: TaskKind;
  /** Attached deltas; those with `trainable` set are trained. */
  readonly deltas?: readonly Delta[];
  /** Also train every base parameter (full fine-tuning, the reference point). */
  readonly fullFineTune?: boolean;
  readonly learningRate: number;
  /**
   * Peak learning rates of single deltas by name, in place of `learningRate` for their variables
   * (same schedule). Prompt and prefix tuning usually want one 10-100x LoRA's.
   */
  readonly deltaLearningRates?: Readonly<Record<string, number>>;
  readonly schedule?: ScheduleKind;
  readonly warmupSteps?: number;
  readonly weightDecay?: number;
  /** Global gradient-norm clip; 0 or Infinity disables it. */
  readonly clipNorm?: number;
  readonly batchSize: number;
  /** Steps to run; `epochs` is used when absent. */
  readonly steps?: number;
  readonly epochs?: number;
  readonly maxLength: number;
  /** Evaluate on validation every N steps (and at the end). 0: only at the end. */
  readonly evalEvery?: number;
  /** Stop after this many evaluations without improvement of validation accuracy (loss for LM). */
  readonly patience?: number;
  readonly seed: number;
  /** Where checkpoints go; none: no checkpoints. */
  readonly runDir?: string;
  readonly resume?: boolean;
  readonly checkpointEvery?: number;
  /**
   * A loss above this many times the first step's (at least 1) is divergence, reported as a NaN
   * loss is: an exploding run (lr 1e6: loss 1e7) stays finite for a while. Default 100.
   */
  readonly divergenceFactor?: number;
  readonly onEvent?: (event: TrainEvent) => void;
  /** Continue with this head (sequential stages share one); a new one is made when absent. */
  readonly head?: ClassificationHead;
}

export type TrainEvent =
  | { type: 'phase'; name: string; total?: number }
  | { type: 'progress'; done: number; total: number }
  | { type: 'step'; step: number; total: number; loss: number; lr: number; examplesPerSecond: number; etaSeconds: number }
  | { type: 'eval'; step: number; metrics: Record<string, number> }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'resumed'; step: number }
  /** `resume` was asked for, and there was no checkpoint to continue from. */
  | { type: 'fresh'; dir: string };

export interface TrainResult {
  readonly steps: number;
  readonly seconds: number;
  readonly bestStep: number;
  readonly history: ReadonlyArray<{ step: number; loss: number; lr: number }>;
  readonly evals: ReadonlyArray<{ step: number; metrics: Record<string, number> }>;
  readonly validation: ClassificationMetrics | LmMetrics;
  readonly test: ClassificationMetrics | LmMetrics;
  readonly head?: ClassificationHead;
  readonly trainedParameters: number;
}

/** A training step queued on the backend, its loss still to be read. */
interface QueuedStep {
  readonly step: number;
  readonly lr: number;
  /** The loss tensor (freed once read) and its read, started when the step was queued. */
  readonly loss: Tensor;
  readonly read: Promise<ArrayLike<number>>;
}

/**
 * What a checkpoint must agree with to be resumed, by name, so that a mismatch can say which
 * setting differs.
 */
function runSettings(o: TrainOptions, variables: readonly Variable[]): Record<string, unknown> {
  return {
    'model architecture': o.backbone.architecture,
    deltas: (o.deltas ?? []).map((d) => [d.name, d.method, d.trainable, d.parameterCount()]),
    'full fine-tuning': !!o.fullFineTune,
    dataset: [o.dataset.name, o.dataset.train.length, o.dataset.validation.length],
    task: o.task ?? 'classification',
    'learning rate (--lr)': o.learningRate,
    'delta learning rates (--delta-lr)': o.deltaLearningRates ?? {},
    'schedule (--schedule)': o.schedule ?? null,
    'warm-up steps (--warmup)': o.warmupSteps ?? null,
    'weight decay (--weight-decay)': o.weightDecay ?? null,
    'clip norm (--clip-norm)': o.clipNorm ?? null,
    'batch size (--batch-size)': o.batchSize,
    'steps (--steps)': o.steps ?? null,
    'epochs (--epochs)': o.epochs ?? null,
    'max length (--max-length)': o.maxLength,
    'seed (--seed)': o.seed,
    'eval every (--eval-every)': o.evalEvery ?? null,
    'patience (--patience)': o.patience ?? null,
    'trained tensor shapes': variables.map((v) => v.shape),
  };
}

/** Each trained variable's learning rate relative to `learningRate` (1 unless its delta has its own). */
function learningRateScales(o: TrainOptions, trained: readonly Variable[]): number[] {
  const own = o.deltaLearningRates ?? {};
  const trainable = (o.deltas ?? []).filter((d) => d.trainable);
  for (const [name, lr] of Object.entries(own)) {
    if (!trainable.some((d) => d.name === name)) {
      throw new DeltaTuneError(
        `a learning rate was given for delta "${name}", which is not a trained delta here`,
        `trained deltas: ${trainable.map((d) => d.name).join(', ') || 'none'}`,
      );
    }
    if (!(lr > 0) || !Number.isFinite(lr))
      throw new DeltaTuneError(`the learning rate for delta "${name}" must be a positive number, got ${lr}`, 'e.g. --delta-lr prompt=0.3');
  }
  const scaleOf = new Map<Variable, number>();
  for (const d of trainable) {
    const lr = own[d.name];
    if (lr !== undefined) for (const v of d.variables.values()) scaleOf.set(v, lr / o.learningRate);
  }
  return trained.map((v) => scaleOf.get(v) ?? 1);
}

/**
 * Trains the trainable deltas (and a classification head) on a dataset. Deterministic for a seed:
 * batch order comes from the seed and the epoch, so a resumed run repeats exactly what an
 * uninterrupted one does. The best validation state is kept and restored before the test split.
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o);
  const task = o.task ?? 'classification';
  const emit = o.onEvent ?? (() => {});
  const start = Date.now();
  const padId = o.tokenizer.padId;
  emit({ type: 'phase', name: 'tokenize' });
  const trainSplit = tokenizeSplit(o.tokenizer, o.dataset.train, o.maxLength);
  const validationSplit = tokenizeSplit(o.tokenizer, o.dataset.validation, o.maxLength);
  const testSplit = tokenizeSplit(o.tokenizer, o.dataset.test, o.maxLength);
  checkVocabulary(o.backbone, [trainSplit, validationSplit, testSplit]);

  const head = task === 'classification' ? o.head ?? new ClassificationHead(o.backbone.hiddenSize, o.dataset.labels, o.seed) : undefined;
  const deltaVariables = (o.deltas ?? []).filter((d) => d.trainable).flatMap((d) => [...d.variables.values()]);
  const baseVariables = o.fullFineTune ? [...o.backbone.parameters.values()] : [];
  for (const v of baseVariables) v.trainable = true;
  const trained: Variable[] = [...new Set([...deltaVariables, ...baseVariables, ...(head?.variables ?? [])])];
  if (trained.length === 0)
    throw new DeltaTuneError(
      'nothing to train: no trainable delta, head or base parameter',
      'attach a method (--method lora) or use the classification task',
    );
  const trainedParameters = trained.reduce((n, v) => n + v.size, 0);

  const stepsPerEpoch = Math.ceil(trainSplit.ids.length / o.batchSize);
  const totalSteps = o.steps ?? Math.max(1, Math.round((o.epochs ?? 1) * stepsPerEpoch));
  const warmup = o.warmupSteps ?? 0;
  const evalEvery = o.evalEvery ?? 0;
  const checkpointEvery = o.checkpointEvery ?? (evalEvery || totalSteps);
  const optimizer = new AdamW(trained, { ...ADAMW_DEFAULTS, weightDecay: o.weightDecay ?? 0 }, learningRateScales(o, trained));
  const settings = runSettings(o, trained);
  const fp = JSON.stringify(settings);

  // A frozen backbone (no trainable delta or base parameter) gives the same pooled output every
  // epoch: compute it once and train the head on the cache.
  const frozenBackbone = deltaVariables.length === 0 && baseVariables.length === 0 && task === 'classification';
  let trainFeatures: tf.Tensor2D | undefined;
  let validationFeatures: tf.Tensor2D | undefined;
  if (frozenBackbone) {
    emit({ type: 'phase', name: 'features', total: trainSplit.ids.length + validationSplit.ids.length });
    trainFeatures = pooledFeatures(o.backbone, trainSplit, o.batchSize, padId, (done) =>
      emit({ type: 'progress', done, total: trainSplit.ids.length + validationSplit.ids.length }),
    );
    validationFeatures = pooledFeatures(o.backbone, validationSplit, o.batchSize, padId, (done) =>
      emit({ type: 'progress', done: trainSplit.ids.length + done, total: trainSplit.ids.length + validationSplit.ids.length }),
    );
  }

  const validate = async (): Promise<Record<string, number>> => {
    if (task === 'lm') return { ...(await evaluateLm(o.backbone, validationSplit, o.batchSize, padId)) };
    if (validationFeatures) return { ...(await evaluateFeatures(validationFeatures, validationSplit.labels, head!)) };
    return { ...(await evaluateClassification(o.backbone, head!, validationSplit, o.batchSize, padId)) };
  };
  // Higher is better: accuracy for classification, -loss for LM.
  const score = (m: Record<string, number>) => (task === 'lm' ? -m.loss : m.accuracy);

  let step = 0;
  let history: Array<{ step: number; loss: number; lr: number }> = [];
  let evals: Array<{ step: number; metrics: Record<string, number> }> = [];
  let bestStep = 0;
  let bestScore: number | null = null;
  let stale = 0;
  let best: Tensor[] = trained.map((v) => tf.clone(v));
  let secondsBefore = 0;
  const checkpointDir = o.runDir ? join(o.runDir, 'checkpoint') : undefined;

  let lastCheckpoint = -1;
  let succeeded = false;
  /** The queued step whose loss has not been read yet. */
  let pending: QueuedStep | undefined;
  // Whatever happens (a NaN stop, a kill signal turned error), the optimizer state, snapshots and
  // feature caches are freed and the base parameters frozen again.
  try {
    if (o.resume && checkpointDir) {
      const loaded = readRunCheckpoint(checkpointDir, fp, settings);
      if (!loaded) emit({ type: 'fresh', dir: checkpointDir });
      if (loaded) {
        trained.forEach((v, i) => v.assign(loaded.trained[i]));
        optimizer.loadState(new Map([...optimizer.state().keys()].map((k, i) => [k, loaded.optimizer[i]])), loaded.state.step);
        tf.dispose(best);
        best = loaded.best;
        tf.dispose([...loaded.trained, ...loaded.optimizer]);
        ({ step, bestStep, bestScore } = loaded.state);
        stale = loaded.state.evalsWithoutImprovement;
        history = [...loaded.state.history];
        evals = [...loaded.state.evals];
        secondsBefore = loaded.state.seconds;
        lastCheckpoint = step;
        emit({ type: 'resumed', step });
      }
    }

    const saveCheckpoint = async () => {
      if (!checkpointDir) return;
      lastCheckpoint = step;
      const state: ProgressState = {
        step,
        fingerprint: fp,
        settings,
        bestStep,
        bestScore,
        evalsWithoutImprovement: stale,
        history,
        evals,
        seconds: secondsBefore + (Date.now() - start) / 1000,
      };
      await writeRunCheckpoint(checkpointDir, state, trained, [...optimizer.state().values()], best);
      emit({ type: 'checkpoint', step, dir: checkpointDir });
    };

    const runEval = async (): Promise<boolean> => {
      const metrics = await validate();
      evals.push({ step, metrics });
      emit({ type: 'eval', step, metrics });
      const s = score(metrics);
      if (bestScore === null || s > bestScore) {
        bestScore = s;
        bestStep = step;
        stale = 0;
        tf.dispose(best);
        best = trained.map((v) => tf.clone(v));
        return false;
      }
      stale++;
      return o.patience !== undefined && stale >= o.patience;
    };

    emit({ type: 'phase', name: 'train', total: totalSteps });
    const loopStart = Date.now();
    const stepAtLoopStart = step;
    // A step's loss is read back while the next step runs: waiting for it before queueing the next
    // would leave a GPU idle for the read's round trip every step. A non-finite loss or gradient
    // already made the optimizer skip that step on the device (globalNormClip), so the variables
    // hold the last finite state when divergence is reported, one step late.
    const report = async ({ step: at, lr, loss: lossTensor, read }: QueuedStep) => {
      const loss = (await read)[0];
      lossTensor.dispose();
      if (!Number.isFinite(loss)) {
        throw new DeltaTuneError(
          `training diverged: the loss is ${loss} at step ${at} (learning rate ${lr.toExponential(2)})`,
          `lower --lr or set --clip-norm; ${
            checkpointDir && lastCheckpoint >= 0
              ? `the last good checkpoint (step ${lastCheckpoint}) is in ${checkpointDir}`
              : 'no checkpoint was kept yet'
          }`,
        );
      }
      const first = history[0]?.loss ?? loss;
      const limit = (o.divergenceFactor ?? 100) * Math.max(first, 1);
      if (loss > limit) {
        throw new DeltaTuneError(
          `training diverged: the loss is ${loss.toPrecision(4)} at step ${at}, over ${
            o.divergenceFactor ?? 100
          }x the first step's ${first.toPrecision(4)} (learning rate ${lr.toExponential(2)})`,
          `start afresh with a lower --lr and --overwrite (this run's peak was ${
            o.learningRate
          }; LoRA and adapters usually train well at 1e-4 to 3e-3)${
            checkpointDir && lastCheckpoint >= 0 ? `; the last good checkpoint (step ${lastCheckpoint}) is kept in ${checkpointDir}` : ''
          }`,
        );
      }
      history.push({ step: at, loss, lr });
      const elapsed = (Date.now() - loopStart) / 1000;
      const rate = ((at - stepAtLoopStart) * o.batchSize) / Math.max(elapsed, 1e-9);
      emit({
        type: 'step',
        step: at,
        total: totalSteps,
        loss,
        lr,
        examplesPerSecond: rate,
        etaSeconds: ((totalSteps - at) * o.batchSize) / Math.max(rate, 1e-9),
      });
    };
    const flush = async () => {
      const last = pending;
      pending = undefined;
      if (last) await report(last);
    };
    let stopped = false;
    while (step < totalSteps && !stopped) {
      const epoch = Math.floor(step / stepsPerEpoch);
      const order = permutation(createRng(o.seed * 1_000_003 + epoch), trainSplit.ids.length);
      const offset = (step % stepsPerEpoch) * o.batchSize;
      const indices = order.slice(offset, offset + o.batchSize);
      const lr = learningRate(step + 1, o.learningRate, warmup, totalSteps, o.schedule ?? 'linear');
      const previous = pending;
      const loss = trainStep(indices, lr);
      // Asking for the data now queues its copy right behind this step's work. (Marked handled:
      // a failed read is thrown when reported, not as an unhandled rejection in between.)
      const read = loss.data();
      read.catch(() => undefined);
      pending = { step: step + 1, lr, loss, read };
      step++;
      if (previous) await report(previous);
      const evaluate = evalEvery > 0 && step % evalEvery === 0 && step < totalSteps;
      const checkpoint = step % checkpointEvery === 0 && step < totalSteps;
      if (evaluate || checkpoint) await flush();
      if (evaluate) stopped = await runEval();
      if (checkpoint) await saveCheckpoint();
    }
    await flush();
    if (evals.at(-1)?.step !== step) await runEval();
    await saveCheckpoint();

    // Continue from the best validation state.
    trained.forEach((v, i) => v.assign(best[i]));
    emit({ type: 'phase', name: 'test' });
    const validation = evals.find((e) => e.step === bestStep)?.metrics as unknown as ClassificationMetrics | LmMetrics;
    const test =
      task === 'lm'
        ? await evaluateLm(o.backbone, testSplit, o.batchSize, padId)
        : await evaluateClassification(o.backbone, head!, testSplit, o.batchSize, padId);
    succeeded = true;
    return {
      steps: step,
      seconds: secondsBefore + (Date.now() - start) / 1000,
      bestStep,
      history,
      evals,
      validation,
      test,
      head,
      trainedParameters,
    };
  } finally {
    // A step still queued when training stopped early (divergence, an error): let its read finish so its loss tensor is freed.
    if (pending) {
      await pending.read.catch(() => undefined);
      pending.loss.dispose();
    }
    tf.dispose([...best, trainFeatures, validationFeatures].filter((t): t is Tensor => !!t));
    optimizer.dispose();
    for (const v of baseVariables) v.trainable = false;
    // A head made here is the caller's on success; on failure nobody else holds it.
    if (!succeeded && head && !o.head) head.dispose();
  }

  /** Queues one step on the backend; returns its loss (a scalar tensor, not yet read). */
  function trainStep(indices: number[], lr: number): Tensor {
    let lossTensor: Tensor;
    let grads: Tensor[];
    if (trainFeatures) {
      const x = tf.gather(trainFeatures, indices);
      const y = tf.tensor1d(
        indices.map((i) => trainSplit.labels[i]),
        'int32',
      );
      ({ value: lossTensor, grads } = gradsOf(() => crossEntropy(head!.logits(x), y)));
      tf.dispose([x, y]);
    } else {
      const batch = makeBatch(trainSplit as TokenizedSplit, indices, padId);
      ({ value: lossTensor, grads } = gradsOf(() => {
        const out = o.backbone.forward(batch.inputs, { training: true });
        return task === 'lm'
          ? causalLmLoss(out.logits!, batch.inputs.inputIds, batch.inputs.attentionMask)
          : crossEntropy(head!.logits(out.pooled), batch.labels);
      }));
      disposeBatch(batch);
    }
    const clip = globalNormClip(grads, o.clipNorm ?? 1, lossTensor);
    optimizer.apply(grads, lr, clip.factor);
    tf.dispose([...grads, clip.factor, clip.norm]);
    return lossTensor;
  }

  function gradsOf(f: () => Tensor): { value: Tensor; grads: Tensor[] } {
    const { value, grads } = lowMemoryVariableGrads(f as () => tf.Scalar, trained);
    return { value, grads: trained.map((v) => grads[v.name] ?? tf.zerosLike(v)) };
  }
}

/** A tokenizer that does not match the model gives ids past its embedding table: tfjs's gather then fails obscurely. */
function checkVocabulary(backbone: Backbone, splits: readonly TokenizedSplit[]): void {
  const size = backbone.vocabSize;
  if (size === undefined) return;
  let max = -1;
  for (const split of splits) for (const row of split.ids) for (const id of row) if (id > max) max = id;
  if (max >= size) {
    throw new DeltaTuneError(
      `the tokenizer produced token id ${max}, but this ${backbone.architecture} model's vocabulary has ${size} entries`,
      "use the tokenizer that came with the model (the model folder's tokenizer.json / vocab.txt)",
    );
  }
}
