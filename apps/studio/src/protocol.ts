// Messages between the page and the training worker. Everything crosses by structured clone:
// plain objects, strings, numbers and Uint8Arrays (transferred where large).
import type { Dataset } from '@deltatune/train';

export type BackendRequest = 'auto' | 'wasm' | 'webgpu';

/** The backbone to train: the shipped USE-lite, or a Hugging Face folder's files picked from disk. */
/** `pick` numbers the folder picks: a new pick of a same-named folder is a new model. */
export type ModelSource =
  | { readonly kind: 'use-lite' }
  | { readonly kind: 'folder'; readonly name: string; readonly pick: number; readonly files: Map<string, Uint8Array> };

/** One method to attach, with its options as the CLI's `--opt key=value` strings (parsed by the method's schema). */
export interface MethodChoice {
  readonly method: string;
  readonly options: Readonly<Record<string, string>>;
}

export interface TrainSettings {
  readonly steps: number;
  readonly batchSize: number;
  readonly maxLength: number;
  readonly learningRate: number;
  readonly warmupSteps: number;
  readonly evalEvery: number;
  readonly seed: number;
}

export interface TrainRequest {
  readonly type: 'train';
  readonly backend: BackendRequest;
  /** The page's base URL: where the shipped files (use-lite/, data/) are served. */
  readonly assetsBase: string;
  readonly model: ModelSource;
  /** The name `deltatune eval` finds the data by: `spam`, or the dropped file's name. */
  readonly datasetName: string;
  readonly dataset: Dataset;
  readonly limits: { readonly train?: number; readonly validation?: number; readonly test?: number };
  readonly columns?: { readonly text: string; readonly label: string };
  /** None: the head alone on the frozen backbone (the baseline). */
  readonly methods: readonly MethodChoice[];
  readonly settings: TrainSettings;
}

export type PageToWorker =
  | TrainRequest
  | { readonly type: 'stop' }
  | { readonly type: 'predict'; readonly id: number; readonly text: string }
  | { readonly type: 'export' };

export interface RunSummary {
  readonly methods: string;
  readonly trainableParameters: number;
  readonly trainablePercent: number;
  readonly accuracy: number;
  readonly macroF1: number;
  readonly testExamples: number;
  readonly steps: number;
  readonly plannedSteps: number;
  readonly stopped: boolean;
  readonly seconds: number;
  readonly msPerStep: number;
  readonly backend: string;
}

export type WorkerToPage =
  | { readonly type: 'backend'; readonly name: string; readonly detail: string }
  | { readonly type: 'phase'; readonly name: string; readonly detail?: string }
  | { readonly type: 'progress'; readonly done: number; readonly total: number }
  | { readonly type: 'step'; readonly step: number; readonly total: number; readonly loss: number; readonly etaSeconds: number }
  | { readonly type: 'eval'; readonly step: number; readonly accuracy: number; readonly loss: number }
  | { readonly type: 'done'; readonly summary: RunSummary; readonly labels: readonly string[] }
  | { readonly type: 'prediction'; readonly id: number; readonly probabilities: readonly number[] }
  | { readonly type: 'exported'; readonly fileName: string; readonly zip: Uint8Array }
  /** Bad input or a failed run: one line saying what is wrong and one saying what to do. */
  | { readonly type: 'error'; readonly request: PageToWorker['type']; readonly message: string; readonly fix?: string };
