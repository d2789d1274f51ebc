// The main entry imports no Node built-in and nothing of @deltatune/node: a page bundles it and
// trains with the same trainer. Disk checkpoints and the shipped datasets are in `./node`.
export { train } from './trainer';
export type { TrainOptions, TrainResult, TrainEvent, TaskKind } from './train-options';
export { createTrainStep } from './train-step';
export type { TrainStep, TrainStepOptions, StepBatch, QueuedStep } from './train-step';
export { isTrained } from './trained-variables';
export { ClassificationHead, crossEntropy, causalLmLoss } from './head';
export { AdamW, ADAMW_DEFAULTS, clipByGlobalNorm, globalNormClip } from './optimizer';
export type { AdamWOptions } from './optimizer';
export { learningRate } from './schedule';
export type { ScheduleKind } from './schedule';
export { classificationMetrics } from './metrics';
export type { ClassificationMetrics, LmMetrics } from './metrics';
export { evaluateClassification, evaluateLm, pooledFeatures, evaluateFeatures } from './evaluate';
export { tokenizeSplit, makeBatch, disposeBatch, chunks, stepRows, targetTokens } from './batches';
export type { TokenizedSplit } from './batches';
export { limitDataset } from './datasets/limit';
export { splitExamples, splitByGroup, SPLIT_SEED } from './datasets/split';
export type { Dataset, Example, SftDataset, SftExample, SftMessage } from './datasets/types';
export { isSftExample } from './datasets/types';
export { datasetFromFile, inspectDatasetFile, datasetKindOfName } from './datasets/file-dataset';
export type { FileColumns, DatasetFileKind, DatasetFileOptions, DatasetFileInspection } from './datasets/file-dataset';
export { decodeDatasetText } from './datasets/text-bytes';
export { parseCsv } from './datasets/file-records';
export { tokenizeSftSplit, sftRow, sftPrompt } from './sft/tokenize';
export type { SftSplit } from './sft/tokenize';
export { packSplit } from './sft/pack';
export { checkSftData } from './sft/check';
export { sftSamples } from './sft/samples';
export type { SftSample, SftSampleOptions } from './sft/samples';
export { lowMemoryVariableGrads } from './low-memory-grads';
export { sumOfSquares, adamwMoment, adamwParam } from './adamw-ops';
export type { AdamWStep } from './adamw-ops';
export { encodeRunCheckpoint, decodeRunCheckpoint, memoryCheckpointStore } from './run-checkpoint';
export type {
  RunCheckpoint,
  RunCheckpointStore,
  ProgressState,
  CheckpointExpectation,
  CheckpointFiles,
  CheckpointFileSource,
} from './run-checkpoint';
export { classifierFiles, CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS, LM_TASK_FILE } from './classifier-files';
export type { ClassifierConfig } from './classifier-files';
