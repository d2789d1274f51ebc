import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import { DeltaTuneError, readSafetensors, writeSafetensors } from '@deltatune/core';

/** The JSON part of a checkpoint: where the run is, and the settings it must agree with to continue. */
export interface ProgressState {
  readonly step: number;
  readonly fingerprint: string;
  /** The settings behind the fingerprint, by name (absent in checkpoints of older versions). */
  readonly settings?: Record<string, unknown>;
  readonly bestStep: number;
  readonly bestScore: number | null;
  readonly evalsWithoutImprovement: number;
  readonly history: ReadonlyArray<{ step: number; loss: number; lr: number }>;
  readonly evals: ReadonlyArray<{ step: number; metrics: Record<string, number> }>;
  readonly seconds: number;
}

/**
 * A training checkpoint: everything `resume` needs to continue as if never stopped. Written, its
 * tensors are the run's own (the store reads them); read back, they are new and the reader's.
 */
export interface RunCheckpoint {
  readonly state: ProgressState;
  /** The trained variables, in the trainer's order. */
  readonly trained: readonly Tensor[];
  /** AdamW's moments (`m.*` then `v.*`). */
  readonly optimizer: readonly Tensor[];
  /** The trained variables at the best validation score. */
  readonly best: readonly Tensor[];
}

/** What a checkpoint must match to be resumed: the run's fingerprint, and its settings to name a difference. */
export interface CheckpointExpectation {
  readonly fingerprint: string;
  readonly settings: Record<string, unknown>;
}

/**
 * Where a run keeps its checkpoint. The trainer takes one by injection (`TrainOptions.checkpoints`),
 * so it needs no file system: `@deltatune/train/node` has a folder store, `memoryCheckpointStore`
 * keeps it in memory, a page can write its own over IndexedDB with the file codec below.
 */
export interface RunCheckpointStore {
  /** Where the checkpoint is, for events and messages (a folder's path). */
  readonly location: string;
  /** The saved checkpoint, or null when there is none. Throws when it is another run's or damaged. */
  read(expected: CheckpointExpectation): Promise<RunCheckpoint | null>;
  /** Replaces the saved checkpoint; where the medium allows, a failure midway leaves the previous one whole. */
  write(checkpoint: RunCheckpoint): Promise<void>;
}

/** A checkpoint as files, by name: what a store keeps. state.json is last, and written last. */
export type CheckpointFiles = Record<string, string | Uint8Array>;

/** The files of a saved checkpoint, as a store reads them back. */
export interface CheckpointFileSource {
  /** Where they are, for messages. */
  readonly location: string;
  /** A file's name as messages show it (its path). */
  pathOf(name: string): string;
  /** A file's contents, or undefined when it is absent. */
  read(name: string): string | Uint8Array | undefined;
}

const STATE = 'state.json';
const TENSOR_FILES = { trained: 'trained.safetensors', optimizer: 'optimizer.safetensors', best: 'best.safetensors' } as const;

async function toBytes(tensors: readonly Tensor[]): Promise<Uint8Array> {
  const data = await Promise.all(tensors.map((t) => t.data() as Promise<Float32Array>));
  return writeSafetensors(
    new Map(tensors.map((t, i) => [`t.${String(i).padStart(5, '0')}`, { dtype: 'float32' as const, shape: t.shape, data: data[i] }])),
  );
}

function fromBytes(bytes: Uint8Array, source: string): Tensor[] {
  const { tensors } = readSafetensors(bytes, source);
  return [...tensors.keys()].sort().map((k) => {
    const t = tensors.get(k)!;
    return tf.tensor(t.data, [...t.shape], t.dtype);
  });
}

export async function encodeRunCheckpoint(c: RunCheckpoint): Promise<CheckpointFiles> {
  // state.json last: where a store updates file by file, a kill never leaves a newer state over older tensors.
  return {
    [TENSOR_FILES.trained]: await toBytes(c.trained),
    [TENSOR_FILES.optimizer]: await toBytes(c.optimizer),
    [TENSOR_FILES.best]: await toBytes(c.best),
    [STATE]: JSON.stringify(c.state) + '\n',
  };
}

const startAfresh = 'start afresh: drop --resume and add --overwrite';

/** Reads a checkpoint back from its files: null when there is none; throws, naming the fix, when it cannot be resumed. */
export function decodeRunCheckpoint(files: CheckpointFileSource, expected: CheckpointExpectation): RunCheckpoint | null {
  const where = files.location;
  const stateFile = files.read(STATE);
  if (stateFile === undefined) return null;
  let state: ProgressState;
  try {
    state = JSON.parse(typeof stateFile === 'string' ? stateFile : new TextDecoder().decode(stateFile)) as ProgressState;
  } catch (e) {
    throw new DeltaTuneError(`the checkpoint ${files.pathOf(STATE)} is corrupted (${(e as Error).message.split('\n')[0]})`, startAfresh);
  }
  if (state.fingerprint !== expected.fingerprint) {
    if (!state.settings) {
      throw new DeltaTuneError(
        `the checkpoint in ${where} was written by an older deltatune, whose checkpoints this one cannot continue`,
        'start afresh: drop --resume and add --overwrite (or another --out)',
      );
    }
    const differ = differences(state.settings, expected.settings);
    throw new DeltaTuneError(
      `the checkpoint in ${where} was written by a run with other settings${
        differ.length ? `: ${differ.join('; ')}` : ' (model, method, data or hyper-parameters differ)'
      }`,
      'resume with the same options as the first run, or start afresh: drop --resume and add --overwrite (or another --out)',
    );
  }
  if (!Number.isInteger(state.step) || state.step < 0 || !Array.isArray(state.history) || !Array.isArray(state.evals)) {
    throw new DeltaTuneError(
      `the checkpoint ${files.pathOf(STATE)} is corrupted (its step or history is not what deltatune writes)`,
      startAfresh,
    );
  }
  const tensors = (name: string) => {
    const bytes = files.read(name);
    if (bytes === undefined) throw new DeltaTuneError(`the checkpoint in ${where} is incomplete: ${name} is missing`, startAfresh);
    try {
      return fromBytes(typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes, files.pathOf(name));
    } catch (e) {
      throw new DeltaTuneError(`the checkpoint in ${where} is damaged: ${(e as Error).message.split('\n')[0]}`, startAfresh);
    }
  };
  return {
    state,
    trained: tensors(TENSOR_FILES.trained),
    optimizer: tensors(TENSOR_FILES.optimizer),
    best: tensors(TENSOR_FILES.best),
  };
}

function differences(saved: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])];
  const show = (v: unknown) => (v === undefined || v === null ? 'unset' : JSON.stringify(v));
  return keys
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k} was ${show(saved[k])}, now ${show(now[k])}`);
}

/**
 * A store that keeps the checkpoint's files in memory (a page without storage, tests). Encoded as
 * a folder store encodes them, so a resume from it goes through the same checks.
 */
export function memoryCheckpointStore(location = 'memory'): RunCheckpointStore & { readonly files: Map<string, string | Uint8Array> } {
  const files = new Map<string, string | Uint8Array>();
  return {
    location,
    files,
    async read(expected) {
      return decodeRunCheckpoint({ location, pathOf: (name) => `${location}/${name}`, read: (name) => files.get(name) }, expected);
    },
    async write(checkpoint) {
      const encoded = await encodeRunCheckpoint(checkpoint);
      files.clear();
      for (const [name, data] of Object.entries(encoded)) files.set(name, data);
    },
  };
}
