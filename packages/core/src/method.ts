import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import type { Backbone } from './backbone';
import type { OptionSchema } from './option-schema';

/**
 * A delta's saved state: a JSON config and named tensors. Method packages choose the names (LoRA
 * uses PEFT's), and `config.deltatune` records which method and version wrote it.
 *
 * Ownership: the tensors `save()` returns belong to the delta and stay valid until its next
 * `save()` or its `detach()`; copy one (`tf.clone`) to keep it longer, and never dispose them. A
 * state passed to `load()` stays the caller's: the delta copies what it needs.
 */
export interface DeltaState {
  readonly config: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, Tensor>;
}

/** A delta attached to a backbone: its variables, its hooks, and the way back out. */
export interface Delta {
  /** The instance name, unique on one backbone (`default` unless chosen). */
  readonly name: string;
  readonly method: string;
  readonly methodVersion: string;
  /** Trainable variables by a stable name (the names its state uses). */
  readonly variables: ReadonlyMap<string, Variable>;
  /**
   * Frozen buffers: tensors the delta owns and saves but never trains (VeRA's shared random
   * projections). Not counted as parameters; disposed on detach.
   */
  readonly buffers: ReadonlyMap<string, Tensor>;
  /** Site names this delta acts on. */
  readonly sites: readonly string[];
  /** Elements in `variables`. */
  parameterCount(): number;
  /** Whether the training library updates this delta's variables. */
  trainable: boolean;
  /** Whether the delta's hooks run (switching at run time, without reloading the backbone). */
  active: boolean;
  save(): DeltaState;
  /**
   * Copies saved tensors into the variables and buffers; shapes and names are validated first. On
   * a merged delta the base weights are restored, the state loaded, and the delta merged again.
   */
  load(state: DeltaState): void;
  /** Removes every hook and disposes the variables: the backbone computes exactly as before attach. */
  detach(): void;
  /** Folds the delta into the base weights (LoRA family, BitFit). */
  merge?(): void;
  unmerge?(): void;
  readonly merged?: boolean;
}

/**
 * What a method factory returns: a plain description (rollup-plugin style), attached later.
 * `lora({ r: 8 })` builds one; `attach(backbone, spec)` runs it.
 */
export interface DeltaSpec<Options = unknown> {
  readonly method: string;
  readonly version: string;
  /** Range of @deltatune/core versions this method was built for, e.g. `^0.1.0`. */
  readonly coreRange: string;
  readonly options: Options;
  attach(backbone: Backbone, name: string): Delta;
}

/**
 * A method as the registry knows it, so the CLI, compose and checkpoint loading can find it by
 * name, third-party ones included.
 */
export interface DeltaMethod<Options = unknown> {
  readonly name: string;
  readonly version: string;
  readonly coreRange: string;
  readonly description: string;
  /** npm package that provides it: named in "install X" errors. */
  readonly packageName: string;
  /** PEFT's `peft_type`, where the method reads and writes PEFT's format. */
  readonly peftType?: string;
  create(options?: Partial<Options>): DeltaSpec<Options>;
  /** The options `create` takes: their types, defaults and help; `options.parse` reads CLI `--opt key=value` strings. */
  readonly options: OptionSchema<Options>;
  /** The spec that re-creates a saved delta from its config. */
  fromConfig(config: Record<string, unknown>): DeltaSpec<Options>;
}
