import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import type { Backbone } from './backbone';
import { DeltaTuneError } from './errors';
import type { Delta, DeltaSpec, DeltaState } from './method';
import { checkCompatible } from './method-registry';
import { validateTensors } from './checkpoint';

/** The parts a method supplies; `defineDelta` turns them into a `Delta` with the shared behaviour. */
export interface DeltaParts {
  readonly name: string;
  readonly method: string;
  readonly version: string;
  readonly backbone: Backbone;
  readonly variables: ReadonlyMap<string, Variable>;
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
  /** Saved tensors; defaults to the variables under their own names. */
  tensors?(): ReadonlyMap<string, Tensor>;
  /** Assigns saved tensors (already validated against `expectedShapes`); defaults to same-name assign. */
  assign?(tensors: ReadonlyMap<string, Tensor>): void;
  /** Shapes `load` expects, by saved name; defaults to the variables' shapes. */
  expectedShapes?(): ReadonlyMap<string, readonly number[]>;
  merge?(): void;
  unmerge?(): void;
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

/** Attaches a method's delta under `name` (unique per backbone). */
export function attach<O>(backbone: Backbone, spec: DeltaSpec<O>, name = 'default'): Delta {
  checkCompatible(spec.method, spec.coreRange);
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
  const assertLive = () => {
    if (detached) throw new DeltaTuneError(`delta "${parts.name}" was detached`, 'attach the method again');
  };
  const unhook = () => {
    for (const u of unregister) u();
    unregister = [];
  };
  const expected = (): ReadonlyMap<string, readonly number[]> =>
    parts.expectedShapes?.() ?? new Map([...parts.variables].map(([k, v]) => [k, v.shape]));

  const delta: Delta = {
    name: parts.name,
    method: parts.method,
    methodVersion: parts.version,
    variables: parts.variables,
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
      return {
        config: { ...parts.config(), deltatune: { method: parts.method, version: parts.version, name: parts.name, architecture: backbone.architecture } },
        tensors: parts.tensors?.() ?? parts.variables,
      };
    },
    load(state: DeltaState) {
      assertLive();
      validateTensors(expected(), state.tensors, `${parts.method} delta "${parts.name}"`);
      if (parts.assign) parts.assign(state.tensors);
      else for (const [k, v] of parts.variables) v.assign(state.tensors.get(k)!);
    },
    detach() {
      if (detached) return;
      if (merged) delta.unmerge!();
      unhook();
      detached = true;
      for (const v of parts.variables.values()) if (!parts.borrowed?.has(v)) v.dispose();
      parts.dispose?.();
      ATTACHED.get(backbone)?.delete(parts.name);
    },
  };
  if (parts.merge && parts.unmerge) {
    const doMerge = parts.merge;
    const doUnmerge = parts.unmerge;
    Object.assign(delta, {
      merge() {
        assertLive();
        if (merged) return;
        doMerge();
        unhook();
        merged = true;
      },
      unmerge() {
        assertLive();
        if (!merged) return;
        doUnmerge();
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
