import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  createRng,
  defineDelta,
  DeltaTuneError,
  kaimingUniform,
  lowRankUpdate,
  ownedVariable,
  selectSites,
  uniform,
  type Backbone,
  type Delta,
  type DeltaSpec,
  type LinearSite,
} from '@deltatune/core';
import { DEFAULT_TARGETS, LORA_OPTIONS, scaling, type LoraOptions } from './options';
import { columnNorm, doraHook, doraWeight, MAGNITUDE } from './dora-math';
import { configToPeft, peftKey } from './peft';

import { LORA_CORE_RANGE, LORA_VERSION } from './version';

export { LORA_CORE_RANGE, LORA_VERSION };

/**
 * LoRA (Hu et al. 2021) on linear sites: `y = x W + b + s * dropout(x) A B`, with `s = alpha / r`.
 * A is `[in, r]` and B is `[r, out]` here (tfjs layout); files use PEFT's `[r, in]` / `[out, r]`.
 */
export function lora(options: Partial<LoraOptions> = {}): DeltaSpec<LoraOptions> {
  const o = LORA_OPTIONS.resolve(options);
  return {
    method: 'lora',
    version: LORA_VERSION,
    coreRange: LORA_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachLora(backbone, name, o, false),
  };
}

interface LoraPair {
  site: LinearSite;
  a: Variable;
  b: Variable;
  /** DoRA's magnitude, `[out]`: the length of each output feature's column of the effective weight. */
  m?: Variable;
}

/**
 * LoRA, or with `dora` its weight-decomposed form (DoRA): the two share options, factors, biases
 * and the PEFT file layout; DoRA adds a magnitude per output feature (see `./dora`).
 */
export function attachLora(backbone: Backbone, name: string, o: LoraOptions, dora: boolean): Delta {
  const method = dora ? 'dora' : 'lora';
  const sites = selectSites(backbone.sites, 'linear', o, DEFAULT_TARGETS[backbone.architecture]);
  const scale = scaling(o);
  const rng = createRng(o.seed);
  const pairs: LoraPair[] = sites.map((site) => {
    const a = kaimingUniform(rng.fork(), [site.inFeatures, o.r], site.inFeatures);
    const b = o.init === 'random' ? uniform(rng.fork(), [o.r, site.outFeatures], -0.5, 0.5) : tf.zeros([o.r, site.outFeatures]);
    // PEFT initialises the magnitude to the norm of the weight it decomposes: W + s A B (just W when B is zero).
    const m = dora ? ownedVariable(tf.tidy(() => columnNorm(tf.add(site.kernel, tf.mul(tf.matMul(a, b), scale))))) : undefined;
    return { site, a: ownedVariable(a), b: ownedVariable(b), m };
  });
  const variables = new Map<string, Variable>();
  for (const p of pairs) {
    variables.set(peftKey(p.site.name, 'lora_A.weight'), p.a);
    variables.set(peftKey(p.site.name, 'lora_B.weight'), p.b);
    if (p.m) variables.set(peftKey(p.site.name, MAGNITUDE), p.m);
  }
  // PEFT's bias modes train base biases in place; keep their values to restore on detach.
  const biasSites =
    o.bias === 'all' ? backbone.sites.filter((s): s is LinearSite => s.kind === 'linear') : o.bias === 'lora_only' ? sites : [];
  const borrowed = new Set<Variable>();
  const originals = new Map<Variable, Tensor>();
  for (const s of biasSites) {
    if (!s.bias) continue;
    borrowed.add(s.bias);
    originals.set(s.bias, tf.clone(s.bias));
    s.bias.trainable = true;
    variables.set(peftKey(s.name, 'bias'), s.bias);
  }
  const delta = (p: LoraPair) => tf.mul(tf.matMul(p.a, p.b), scale);

  const result = defineDelta({
    name,
    method,
    version: LORA_VERSION,
    backbone,
    variables,
    borrowed,
    sites: sites.map((s) => s.name),
    register: () =>
      pairs.map((p) =>
        p.m
          ? backbone.hooks.add('linear', p.site.name, doraHook(p.a, p.b, p.m, scale, o.dropout), { owner: name })
          : backbone.hooks.add(
              'linear',
              p.site.name,
              {
                output: (x, y, _site, ctx) => {
                  const input = ctx.training && o.dropout > 0 ? tf.dropout(x, o.dropout) : x;
                  const flat = tf.reshape(input, [-1, p.site.inFeatures]) as tf.Tensor2D;
                  // y + s (x A) B: matmul, then one fused low-rank kernel where the backend has it.
                  const out = lowRankUpdate(tf.reshape(y, [-1, p.site.outFeatures]), tf.matMul(flat, p.a), p.b, scale);
                  return tf.reshape(out, y.shape);
                },
              },
              { owner: name },
            ),
      ),
    config: () => configToPeft(o, backbone, sites, dora),
    tensors: () => {
      // PEFT stores A as [r, in] and B as [out, r]: transpose ours.
      const out = new Map<string, Tensor>();
      for (const p of pairs) {
        out.set(peftKey(p.site.name, 'lora_A.weight'), tf.transpose(p.a));
        out.set(peftKey(p.site.name, 'lora_B.weight'), tf.transpose(p.b));
        if (p.m) out.set(peftKey(p.site.name, MAGNITUDE), p.m);
      }
      for (const s of biasSites) if (s.bias) out.set(peftKey(s.name, 'bias'), s.bias);
      return out;
    },
    expectedShapes: () => {
      const shapes = new Map<string, readonly number[]>();
      for (const p of pairs) {
        shapes.set(peftKey(p.site.name, 'lora_A.weight'), [o.r, p.site.inFeatures]);
        shapes.set(peftKey(p.site.name, 'lora_B.weight'), [p.site.outFeatures, o.r]);
        if (p.m) shapes.set(peftKey(p.site.name, MAGNITUDE), [p.site.outFeatures]);
      }
      for (const s of biasSites) if (s.bias) shapes.set(peftKey(s.name, 'bias'), s.bias.shape);
      return shapes;
    },
    assign: (tensors) => {
      for (const p of pairs) {
        tf.tidy(() => {
          p.a.assign(tf.transpose(tensors.get(peftKey(p.site.name, 'lora_A.weight'))!));
          p.b.assign(tf.transpose(tensors.get(peftKey(p.site.name, 'lora_B.weight'))!));
          p.m?.assign(tensors.get(peftKey(p.site.name, MAGNITUDE))!);
        });
      }
      for (const s of biasSites) if (s.bias) s.bias.assign(tensors.get(peftKey(s.name, 'bias'))!);
    },
    // Core snapshots the kernels before merging, so unmerge restores them bit for bit
    // (subtracting the update back out, as PEFT does, leaves float rounding behind).
    merge: () => {
      for (const p of pairs)
        tf.tidy(() => p.site.kernel.assign(p.m ? doraWeight(p.site.kernel, p.a, p.b, p.m, scale) : tf.add(p.site.kernel, delta(p))));
    },
    mergeWeights: () => pairs.map((p) => p.site.kernel),
    dispose: () => {
      for (const [v, original] of originals) {
        v.assign(original);
        v.trainable = false;
        original.dispose();
      }
    },
  });
  if (!dora) FACTORS.set(result, { scale, sites: new Map(pairs.map((p) => [p.site.name, { a: p.a, b: p.b }])) });
  return result;
}

/** One targeted site's factors: the update is `scale * A B`, A `[in, r]`, B `[r, out]` (tfjs layout). */
export interface LoraFactors {
  readonly scale: number;
  readonly sites: ReadonlyMap<string, { readonly a: Variable; readonly b: Variable }>;
}

const FACTORS = new WeakMap<Delta, LoraFactors>();

/**
 * A LoRA delta's factors and scaling, by site name: what combining LoRAs (compose's
 * `combineLoras`) or exporting them needs, without re-deriving LoRA's key names or scaling.
 */
export function loraFactors(delta: Delta): LoraFactors {
  const f = FACTORS.get(delta);
  if (!f)
    throw new DeltaTuneError(`delta "${delta.name}" is ${delta.method}, not a LoRA made by this @deltatune/lora`, 'pass a LoRA delta');
  return f;
}

/** `r * (in + out)` for each targeted site: the closed form the accounting must agree with. */
export function loraParameterFormula(backbone: Backbone, options: Partial<LoraOptions> = {}): number {
  const o = LORA_OPTIONS.resolve(options);
  return selectSites(backbone.sites, 'linear', o, DEFAULT_TARGETS[backbone.architecture]).reduce(
    (n, s) => n + o.r * (s.inFeatures + s.outFeatures),
    0,
  );
}
