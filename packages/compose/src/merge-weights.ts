import * as tf from '@tensorflow/tfjs-core';
import { attachedDeltas, createRng, DeltaTuneError, type Backbone, type Delta } from '@deltatune/core';
import { combineTaskTensors, resolvePrune, TASK_COMBINATIONS, type PruneOptions, type TaskCombination } from './merge-utils';

export interface MergeWeightDeltasOptions extends PruneOptions {
  /** Default `linear`: task arithmetic, the weighted sum of the changes. */
  readonly combination?: TaskCombination;
}

export interface MergedWeights {
  /** The backbone parameters that changed (Hugging Face names), in the backbone's order. */
  readonly parameters: readonly string[];
}

/**
 * Task arithmetic over any deltas that merge (LoRA family, BitFit, a plugin's): each member's dense
 * change to every base weight it alters (its `merge()` minus the base, read and then unmerged,
 * which core makes exact), combined per weight as PEFT's `task_arithmetic` (`linear`), `ties`,
 * `dare_linear`, `dare_ties` or `magnitude_prune` with the members' `weights`, and folded into
 * the backbone's weights. The members are then switched off (their effect is in the weights) and
 * stay attached; the backbone's parameters can be saved as a merged model. Not undone by unmerge.
 *
 * A member that does not change some weight another one does counts there as a zero change (which
 * no combination counts: zeros have no sign and add nothing). Unlike `combineLoras` (PEFT's
 * `add_weighted_adapter`), a single member is combined as asked: TIES on one delta trims it.
 * Base parameters a delta trains in place (LoRA's `bias: "all"`) are not part of its merge, so they
 * are left as they are, unweighted.
 *
 * DARE draws one `createRng(seed)` stream: parameter by parameter in the backbone's order, each
 * member's change in `deltas` order, every change element by element in row-major order of the
 * parameter as the backbone holds it (linear kernels `[in, out]`, the transpose of a PyTorch file).
 */
// Async because the changes are read to the CPU, and WebGPU in Node reads only asynchronously.
export async function mergeWeightDeltas(
  backbone: Backbone,
  deltas: readonly Delta[],
  weights: readonly number[],
  options: MergeWeightDeltasOptions = {},
): Promise<MergedWeights> {
  const combination = options.combination ?? 'linear';
  if (!(TASK_COMBINATIONS as readonly string[]).includes(combination))
    throw new DeltaTuneError(
      `mergeWeightDeltas: unknown combination "${String(combination)}"`,
      `use one of ${TASK_COMBINATIONS.join(', ')}`,
    );
  const prune = resolvePrune(combination, options, 'mergeWeightDeltas');
  checkMembers(backbone, deltas, weights);

  const parameters = [...backbone.parameters];
  /** Per parameter index: each member's change, where it has one (freed once folded in). */
  const changes = new Map<number, Array<tf.Tensor | undefined>>();
  try {
    for (const [member, delta] of deltas.entries()) {
      delta.active = true;
      // Delta does not say which weights its merge assigns; an assigned variable has new data, so
      // comparing data ids finds them without reading (or copying) any weight.
      const before = parameters.map(([, v]) => v.dataId);
      delta.merge!();
      const merged = parameters.flatMap(([, v], i) => (v.dataId !== before[i] ? [[i, tf.clone(v)] as const] : []));
      delta.unmerge!();
      if (merged.length === 0)
        throw new DeltaTuneError(
          `mergeWeightDeltas: merging "${delta.name}" (${delta.method}) changed none of the backbone's parameters`,
          "merge deltas whose merge() folds into the backbone's own weights",
        );
      for (const [i, value] of merged) {
        const list = changes.get(i) ?? deltas.map(() => undefined);
        list[member] = tf.tidy(() => tf.sub(value, parameters[i][1]));
        value.dispose();
        changes.set(i, list);
      }
    }
    const rng = createRng(prune.seed);
    const changed: string[] = [];
    for (const i of [...changes.keys()].sort((x, y) => x - y)) {
      const [name, variable] = parameters[i];
      const list = changes.get(i)!;
      const size = variable.size;
      const values = await Promise.all(list.map((t) => (t ? t.data() : new Float32Array(size))));
      const combined = combineTaskTensors(values, weights, combination, prune, rng);
      const base = await variable.data();
      const folded = new Float32Array(size);
      for (let j = 0; j < size; j++) folded[j] = base[j] + combined[j];
      tf.tidy(() => variable.assign(tf.tensor(folded, variable.shape, 'float32')));
      for (const t of list) t?.dispose();
      changes.delete(i);
      changed.push(name);
    }
    for (const d of deltas) d.active = false;
    return { parameters: changed };
  } finally {
    for (const list of changes.values()) for (const t of list) t?.dispose();
  }
}

function checkMembers(backbone: Backbone, deltas: readonly Delta[], weights: readonly number[]): void {
  if (deltas.length === 0) throw new DeltaTuneError('mergeWeightDeltas needs at least one delta', 'pass the deltas to merge');
  if (deltas.length !== weights.length)
    throw new DeltaTuneError(`mergeWeightDeltas: ${deltas.length} deltas but ${weights.length} weights`, 'give one weight per delta');
  const bad = weights.find((w) => !Number.isFinite(w));
  if (bad !== undefined) throw new DeltaTuneError(`mergeWeightDeltas: weight ${bad} is not a finite number`, 'e.g. weights 0.5, 0.5');
  const attached = attachedDeltas(backbone);
  for (const d of deltas) {
    if (!attached.includes(d))
      throw new DeltaTuneError(
        `mergeWeightDeltas: delta "${d.name}" is not attached to this backbone`,
        'attach every delta to the backbone merged into',
      );
    if (!d.merge || !d.unmerge)
      throw new DeltaTuneError(
        `mergeWeightDeltas: delta "${d.name}" (${d.method}) cannot be merged into the weights`,
        'merge LoRA-family, BitFit and other mergeable deltas only',
      );
    if (d.merged)
      throw new DeltaTuneError(
        `mergeWeightDeltas: delta "${d.name}" is merged already`,
        'unmerge() it first: its change is measured from the base weights',
      );
  }
  if (new Set(deltas).size !== deltas.length)
    throw new DeltaTuneError('mergeWeightDeltas: the same delta is given twice', 'give each delta once (a weight of 2 counts it twice)');
  // Its unmerge would later restore the weights from before this fold, silently undoing it.
  const other = attached.find((d) => d.merged && !deltas.includes(d));
  if (other)
    throw new DeltaTuneError(
      `mergeWeightDeltas: delta "${other.name}" is merged into these weights`,
      `unmerge() "${other.name}" first (and pass it here too, to merge it with the others)`,
    );
}
