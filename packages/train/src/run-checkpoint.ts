import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { DeltaTuneError, readSafetensors, writeSafetensors } from '@deltatune/core';
import { recoverFolder, writeFolderAtomic } from '@deltatune/node';

/**
 * A training checkpoint: everything `--resume` needs to continue as if never stopped. One folder,
 * replaced atomically, so a kill at any moment leaves the previous checkpoint whole.
 */
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

export async function writeRunCheckpoint(
  dir: string,
  state: ProgressState,
  trained: readonly Variable[],
  optimizer: readonly Tensor[],
  best: readonly Tensor[],
): Promise<void> {
  // state.json last: where the folder is updated file by file (a stray file in it), a kill never
  // leaves a newer state over older tensors.
  writeFolderAtomic(dir, {
    'trained.safetensors': await toBytes(trained),
    'optimizer.safetensors': await toBytes(optimizer),
    'best.safetensors': await toBytes(best),
    'state.json': JSON.stringify(state) + '\n',
  });
}

export interface LoadedCheckpoint {
  state: ProgressState;
  trained: Tensor[];
  optimizer: Tensor[];
  best: Tensor[];
}

export function readRunCheckpoint(dir: string, fingerprint: string, settings?: Record<string, unknown>): LoadedCheckpoint | null {
  // A kill between the two renames of a checkpoint swap leaves the complete new copy beside the folder.
  recoverFolder(dir);
  if (!existsSync(join(dir, 'state.json'))) return null;
  let state: ProgressState;
  try {
    state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as ProgressState;
  } catch (e) {
    throw new DeltaTuneError(
      `the checkpoint ${join(dir, 'state.json')} is corrupted (${(e as Error).message.split('\n')[0]})`,
      'start afresh: drop --resume and add --overwrite',
    );
  }
  if (state.fingerprint !== fingerprint) {
    if (!state.settings) {
      throw new DeltaTuneError(
        `the checkpoint in ${dir} was written by an older deltatune, whose checkpoints this one cannot continue`,
        'start afresh: drop --resume and add --overwrite (or another --out)',
      );
    }
    const differ = settings ? differences(state.settings, settings) : [];
    throw new DeltaTuneError(
      `the checkpoint in ${dir} was written by a run with other settings${
        differ.length ? `: ${differ.join('; ')}` : ' (model, method, data or hyper-parameters differ)'
      }`,
      'resume with the same options as the first run, or start afresh: drop --resume and add --overwrite (or another --out)',
    );
  }
  if (!Number.isInteger(state.step) || state.step < 0 || !Array.isArray(state.history) || !Array.isArray(state.evals)) {
    throw new DeltaTuneError(
      `the checkpoint ${join(dir, 'state.json')} is corrupted (its step or history is not what deltatune writes)`,
      'start afresh: drop --resume and add --overwrite',
    );
  }
  const read = (name: string) => {
    const path = join(dir, name);
    if (!existsSync(path))
      throw new DeltaTuneError(
        `the checkpoint in ${dir} is incomplete: ${name} is missing`,
        'start afresh: drop --resume and add --overwrite',
      );
    try {
      return fromBytes(readFileSync(path), path);
    } catch (e) {
      throw new DeltaTuneError(
        `the checkpoint in ${dir} is damaged: ${(e as Error).message.split('\n')[0]}`,
        'start afresh: drop --resume and add --overwrite',
      );
    }
  };
  return { state, trained: read('trained.safetensors'), optimizer: read('optimizer.safetensors'), best: read('best.safetensors') };
}

function differences(saved: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])];
  const show = (v: unknown) => (v === undefined || v === null ? 'unset' : JSON.stringify(v));
  return keys
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(now[k]))
    .map((k) => `${k} was ${show(saved[k])}, now ${show(now[k])}`);
}
