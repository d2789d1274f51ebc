import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import type { Backbone } from './backbone';
import { DeltaTuneError } from './errors';
import type { Delta, DeltaSpec, DeltaState } from './method';
import { checkCompatible } from './method-registry';
import { validateTensors } from './checkpoint';
import { snapshotWeights, type WeightSnapshot } from './weights';

/** The parts a method supplies; `defineDelta` turns them into a `Delta` with the shared behaviour. */
export interface DeltaParts {
  readonly name: string;
  readonly method: string;
  readonly version: string;
  readonly backbone: Backbone;
  readonly variables: ReadonlyMap<string, Variable>;
  /**
   * Frozen buffers the delta owns and saves but never trains (made with `ownedVariable(t, false)`,
   * so `load` can assign them). Disposed on detach.
   */
  readonly buffers?: ReadonlyMap<string, Variable>;
  readonly sites: readonly string[];
  /**
   * Base parameters the delta trains in place (PEFT's `bias: "all"`): counted and trained with the
   * delta, but never disposed by it; `dispose` must restore their values.
   */
  readonly borrowed?: ReadonlySet<Variable>;
  /** Registers the hooks and returns their unregister functions. Called on attach and on re-activation. */
  register(): Array<() => void>;
  /** The saved config (without the `deltatune` stamp, which is added here). */
  config(): Record<string, unknown>;
  /**
   * Saved tensors; defaults to the variables and buffers under their own names. Tensors made here
   * (a transpose) are disposed by the delta at its next save or detach.
   */
  tensors?(): ReadonlyMap<string, Tensor>;
  /** Assigns saved tensors (already validated against `expectedShapes`); defaults to same-name assign. */
  assign?(tensors: ReadonlyMap<string, Tensor>): void;
  /** Shapes `load` expects, by saved name; defaults to the variables' and buffers' shapes. */
  expectedShapes?(): ReadonlyMap<string, readonly number[]>;
  /** Folds the delta into the base weights. Unmerging restores them from a snapshot (exact). */
  merge?(): void;
  /** The base weights `merge` changes: snapshotted before it runs, restored by unmerge. */
  mergeWeights?(): Iterable<Variable>;
  /** Frees anything beyond the variables, and restores borrowed base parameters. */
  dispose?(): void;
}

const ATTACHED = new WeakMap<Backbone, Map<string, Delta>>();

/** Deltas attached to a backbone, by name, in attach order. */
export function attachedDeltas(backbone: Backbone): Delta[] {
  return [...(ATTACHED.get(backbone)?.values() ?? [])];
}

/**
 * `wanted` if no delta on this backbone has that name, else `wanted_2`, `wanted_3`...: how the CLI
 * names a second LoRA, and two PEFT folders that both call themselves `default`.
 */
export function uniqueDeltaName(backbone: Backbone, wanted: string): string {
  const taken = new Set(ATTACHED.get(backbone)?.keys() ?? []);
  if (!taken.has(wanted)) return wanted;
  let n = 2;
  while (taken.has(`${wanted}_${n}`)) n++;
  return `${wanted}_${n}`;
}

/**
 * Attaches a method's delta under `name`, unique per backbone. Without a name it is the method's
 * (`lora`, then `lora_2`...), so attaching two methods, or one twice, needs no names.
 */
export function attach<O>(backbone: Backbone, spec: DeltaSpec<O>, name?: string): Delta {
  checkCompatible(spec.method, spec.coreRange);
  if (name === undefined) return spec.attach(backbone, uniqueDeltaName(backbone, spec.method));
  const existing = ATTACHED.get(backbone);
  if (existing?.has(name)) {
    throw new DeltaTuneError(
      `a delta named "${name}" is already attached to this ${backbone.architecture} backbone`,
      'pick another name: attach(backbone, spec, "second")',
    );
  }
  return spec.attach(backbone, name);
}

export function defineDelta(parts: DeltaParts): Delta {
  const { backbone } = parts;
  let unregister = parts.register();
  let active = true;
  let merged = false;
  let detached = false;
  let trainable = true;
  const buffers: ReadonlyMap<string, Variable> = parts.buffers ?? new Map();
  const owned = new Set<Tensor>([...parts.variables.values(), ...buffers.values(), ...(parts.borrowed ?? [])]);
  /** Tensors the last save made (not the delta's own): freed at the next save or detach. */
  let lastSaved: Tensor[] = [];
  const freeLastSave = () => {
    for (const t of lastSaved) t.dispose();
    lastSaved = [];
  };
  let snapshot: WeightSnapshot | undefined;
  const assertLive = () => {
    if (detached) throw new DeltaTuneError(`delta "${parts.name}" was detached`, 'attach the method again');
  };
  const unhook = () => {
    for (const u of unregister) u();
    unregister = [];
  };
  const stored = (): ReadonlyMap<string, Variable> => new Map([...parts.variables, ...buffers]);
  const expected = (): ReadonlyMap<string, readonly number[]> =>
    parts.expectedShapes?.() ?? new Map([...stored()].map(([k, v]) => [k, v.shape]));

  const delta: Delta = {
    name: parts.name,
    method: parts.method,
    methodVersion: parts.version,
    variables: parts.variables,
    buffers,
    sites: parts.sites,
    parameterCount: () => [...parts.variables.values()].reduce((n, v) => n + v.size, 0),
    get trainable() {
      return trainable;
    },
    set trainable(value: boolean) {
      trainable = value;
      for (const v of parts.variables.values()) v.trainable = value;
    },
    get active() {
      return active;
    },
    set active(value: boolean) {
      assertLive();
      if (value === active) return;
      if (merged) throw new DeltaTuneError(`delta "${parts.name}" is merged`, 'unmerge() it before switching it off');
      active = value;
      if (value) unregister = parts.register();
      else unhook();
    },
    get merged() {
      return merged;
    },
    save(): DeltaState {
      assertLive();
      freeLastSave();
      const tensors = parts.tensors?.() ?? stored();
      lastSaved = [...tensors.values()].filter((t) => !owned.has(t));
      return {
        config: {
          ...parts.config(),
          deltatune: { method: parts.method, version: parts.version, name: parts.name, architecture: backbone.architecture },
        },
        tensors,
      };
    },
    load(state: DeltaState) {
      assertLive();
      validateTensors(expected(), state.tensors, `${parts.method} delta "${parts.name}"`);
      // A merged delta's values are folded into the base weights: unfold, load, fold the new ones.
      const remerge = merged;
      if (remerge) delta.unmerge!();
      if (parts.assign) parts.assign(state.tensors);
      else {
        // A state just saved by this delta holds its own variables: assigning one to itself would free its data.
        for (const [k, v] of stored()) if (state.tensors.get(k) !== v) v.assign(state.tensors.get(k)!);
      }
      if (remerge) delta.merge!();
    },
    detach() {
      if (detached) return;
      if (merged) delta.unmerge!();
      unhook();
      detached = true;
      freeLastSave();
      for (const v of parts.variables.values()) if (!parts.borrowed?.has(v)) v.dispose();
      for (const b of buffers.values()) b.dispose();
      parts.dispose?.();
      ATTACHED.get(backbone)?.delete(parts.name);
    },
  };
  if (parts.merge) {
    if (!parts.mergeWeights)
      throw new Error(`${parts.method}: a delta that merges must say which base weights merge changes (mergeWeights)`);
    const doMerge = parts.merge;
    const weights = parts.mergeWeights;
    Object.assign(delta, {
      merge() {
        assertLive();
        if (merged) return;
        if (!active) throw new DeltaTuneError(`delta "${parts.name}" is switched off`, 'set active = true before merging it');
        snapshot = snapshotWeights(weights());
        doMerge();
        unhook();
        merged = true;
      },
      unmerge() {
        assertLive();
        if (!merged) return;
        snapshot!.restore();
        snapshot = undefined;
        merged = false;
        if (active) unregister = parts.register();
      },
    });
  }
  let map = ATTACHED.get(backbone);
  if (!map) ATTACHED.set(backbone, (map = new Map()));
  map.set(parts.name, delta);
  return delta;
}
