// Helpers for the DoRA / VeRA / LoHa / LoKr tests against fixtures/method-reference (plain PyTorch, see its README).
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, Delta } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { loadDelta } from '@deltatune/node';

export const METHOD_FIXTURES = new URL('./fixtures/method-reference/', import.meta.url).pathname;
const BERT = new URL('./fixtures/peft-reference/bert', import.meta.url).pathname;

interface Case {
  last_hidden_state: number[][][];
  merged_last_hidden_state: number[][][];
  /** d sum(last_hidden_state * loss_weights) / d tensor, by saved tensor name (PEFT layout). */
  grads: Record<string, number[] | number[][]>;
  max_abs_change_from_base: number;
}

interface MethodReference {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  loss_weights: number[][][];
  cases: Record<string, Case>;
}

export const methodReference: MethodReference = JSON.parse(readFileSync(`${METHOD_FIXTURES}reference.json`, 'utf8'));

function hidden(model: Backbone): tf.Tensor {
  const r = methodReference;
  return model.forward({
    inputIds: tf.tensor2d(r.input_ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(r.attention_mask, undefined, 'int32'),
    tokenTypeIds: tf.tensor2d(r.token_type_ids, undefined, 'int32'),
  }).lastHiddenState!;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return Number.isNaN(d) ? Infinity : d;
}

/** What one reference case measured: the largest differences, and the tolerance each was held to. */
export interface CaseResult {
  unmerged: number;
  merged: number;
  unmergedAgain: number;
  /** Largest gradient difference over all tensors, relative to that tensor's largest |gradient|. */
  gradient: number;
  /** The delta as loaded, for further checks (detached at the end). */
  sites: readonly string[];
  method: string;
}

/**
 * Loads the fixture BERT and the case's PEFT-layout folder through the registry (as `--delta DIR`
 * does), then compares the unmerged, merged and re-unmerged outputs and every tensor's gradient of
 * `sum(h * R)` with the float64 PyTorch reference.
 */
export function checkCase(name: string): CaseResult {
  const ref = methodReference.cases[name];
  const model = loadHuggingFaceFolder(BERT);
  const { delta } = loadDelta(model, `${METHOD_FIXTURES}${name}`);
  const flat = (x: unknown) => (x as number[]).flat(3) as number[];
  const out = (m: Backbone) => tf.tidy(() => hidden(m).dataSync() as Float32Array);
  const unmerged = maxAbsDiff(out(model), flat(ref.last_hidden_state));
  const gradient = gradientDiff(model, delta, ref);
  delta.merge!();
  const merged = maxAbsDiff(out(model), flat(ref.merged_last_hidden_state));
  delta.unmerge!();
  const unmergedAgain = maxAbsDiff(out(model), flat(ref.last_hidden_state));
  const result = { unmerged, merged, unmergedAgain, gradient, sites: delta.sites, method: delta.method };
  delta.detach();
  model.dispose();
  return result;
}

/** The gradients of `sum(h * R)`, read in the saved (PEFT) layout by differentiating through `save()`'s tensors. */
function gradientDiff(model: Backbone, delta: Delta, ref: Case): number {
  const R = tf.tensor3d(methodReference.loss_weights);
  const trainable = [...delta.variables.values()];
  const { grads } = tf.variableGrads(() => tf.sum(tf.mul(hidden(model), R)) as tf.Scalar, trainable);
  R.dispose();
  // Saved names to variables: saved tensors that are variables themselves, or their transposes (LoRA's A and B).
  const saved = delta.save().tensors;
  let worst = 0;
  const named = [...delta.variables.entries()];
  for (const [key, want] of Object.entries(ref.grads)) {
    const wantFlat = (want as number[]).flat() as number[];
    const scale = Math.max(...wantFlat.map(Math.abs), 1e-12);
    const entry = named.find(([k]) => k === key);
    if (!entry) {
      // A frozen buffer (VeRA's shared projections): no gradient of ours to compare.
      expect(delta.buffers.has(key)).toBe(true);
      continue;
    }
    const [, v] = entry;
    const g = grads[v.name];
    const savedShape = saved.get(key)!.shape;
    // The fixture's LoRA factors are never square, so a shape mismatch means the tfjs layout (transposed).
    const inSavedLayout = g.shape.join() === savedShape.join() ? g : tf.transpose(g);
    worst = Math.max(worst, maxAbsDiff(inSavedLayout.dataSync(), wantFlat) / scale);
    if (inSavedLayout !== g) inSavedLayout.dispose();
  }
  for (const g of Object.values(grads)) g.dispose();
  return worst;
}
