import * as tf from '@tensorflow/tfjs-core';
import type { Variable } from '@tensorflow/tfjs-core';
import { closestNames, DeltaTuneError, type RawTensor } from '@deltatune/core';
import { frozen } from './layers';

/**
 * The tensors of a model file, taken by name with their expected shape. Names are checked as
 * they are taken, and every error names the tensor and the file, so a bad folder is diagnosed in
 * one line.
 *
 * Memory: each tensor's values are read once, when it is taken, and nothing here keeps them. A
 * BF16/F16 file's tensors decode as they are read (core's RawTensor), so while a model loads it
 * is held as the file plus the variables made so far plus one decoded tensor, not the file plus a
 * float32 copy of every tensor plus the variables.
 */
export class WeightStore {
  private readonly taken = new Set<string>();
  readonly parameters = new Map<string, Variable>();
  /** Names taken with `transpose` (PyTorch `[out, in]` in the file, `[in, out]` here). */
  readonly transposed = new Set<string>();

  constructor(
    private readonly tensors: ReadonlyMap<string, RawTensor>,
    private readonly source: string,
  ) {}

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  private raw(name: string, shape: readonly number[]): RawTensor {
    const t = this.tensors.get(name);
    if (!t) {
      const near = closestNames(name, [...this.tensors.keys()], 3);
      throw new DeltaTuneError(
        `${this.source} is missing tensor "${name}"${near.length ? ` (closest: ${near.join(', ')})` : ''}`,
        'check that config.json matches the weights (model_type, num_hidden_layers, ...) and the file is complete',
      );
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new DeltaTuneError(
        `${this.source}: tensor "${name}" has shape [${t.shape}], config.json implies [${shape}]`,
        'check that config.json belongs to these weights',
      );
    }
    this.taken.add(name);
    return t;
  }

  /** A frozen variable registered under its Hugging Face name. `transpose` turns a PyTorch `[out, in]` Linear weight into `[in, out]`. */
  take(name: string, shape: readonly number[], options: { transpose?: boolean; as?: string } = {}): Variable {
    const t = this.raw(name, shape);
    // `t.data` may decode the tensor: read it once; the array is the tensor's (or garbage) after this.
    let value = tf.tensor(t.data, [...t.shape], t.dtype);
    if (options.transpose) {
      this.transposed.add(options.as ?? name);
      const transposed = tf.transpose(value);
      value.dispose();
      value = transposed;
    }
    const v = frozen(value);
    this.parameters.set(options.as ?? name, v);
    return v;
  }

  /** A slice of a stored tensor along its last axis (USE-lite stores q, k and v fused). */
  takeColumns(name: string, shape: readonly number[], begin: number, size: number, as: string): Variable {
    const t = this.raw(name, shape);
    const full = tf.tensor(t.data, [...t.shape], t.dtype);
    const part = tf.slice(full, [...shape.slice(0, -1).map(() => 0), begin], [...shape.slice(0, -1), size]);
    full.dispose();
    const v = frozen(part);
    this.parameters.set(as, v);
    return v;
  }

  /** Names in the file that no layer took: ignored heads are fine, anything else is reported by the caller. */
  untaken(): string[] {
    return [...this.tensors.keys()].filter((k) => !this.taken.has(k));
  }
}
