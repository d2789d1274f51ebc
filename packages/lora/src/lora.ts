import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { createRng, defineDelta, DeltaTuneError, kaimingUniform, lowRankUpdate, ownedVariable, selectSites, uniform, type Backbone, type Delta, type DeltaSpec, type LinearSite } from '@deltatune/core';
import { DEFAULT_TARGETS, LORA_DEFAULTS, scaling, type LoraOptions } from './options';
import { configToPeft, peftKey } from './peft';

import { LORA_CORE_RANGE, LORA_VERSION } from './version';

export { LORA_CORE_RANGE, LORA_VERSION };

/**
 * LoRA (Hu et al. 2021) on linear sites: `y = x W + b + s * dropout(x) A B`, with `s = alpha / r`.
 * A is `[in, r]` and B is `[r, out]` here (tfjs layout); files use PEFT's `[r, in]` / `[out, r]`.
 */
export function lora(options: Partial<LoraOptions> = {}): DeltaSpec<LoraOptions> {
  const o: LoraOptions = { ...LORA_DEFAULTS, ...options };
  validate(o);
  return {
    method: 'lora',
    version: LORA_VERSION,
    coreRange: LORA_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachLora(backbone, name, o),
  };
}

function validate(o: LoraOptions): void {
  if (!Number.isInteger(o.r) || o.r < 1) throw new DeltaTuneError(`lora: r must be a positive integer, got ${o.r}`, 'e.g. --opt r=8');
  if (!Number.isFinite(o.alpha)) throw new DeltaTuneError(`lora: alpha must be a finite number, got ${o.alpha}`, 'e.g. --opt alpha=16');
  if (typeof o.dropout !== 'number' || !(o.dropout >= 0 && o.dropout < 1))
    throw new DeltaTuneError(`lora: dropout must be in [0, 1), got ${o.dropout}`, 'e.g. --opt dropout=0.1');
  if (!['none', 'all', 'lora_only'].includes(o.bias))
    throw new DeltaTuneError(`lora: bias must be none, all or lora_only, got ${o.bias}`, 'e.g. --opt bias=none');
  if (!['kaiming', 'random'].includes(o.init))
    throw new DeltaTuneError(`lora: init must be kaiming or random, got ${o.init}`, 'e.g. --opt init=kaiming');
}

interface LoraPair {
  site: LinearSite;
  a: Variable;
  b: Variable;
}

function attachLora(backbone: Backbone, name: string, o: LoraOptions): Delta {
  const sites = selectSites(backbone.sites, 'linear', o, DEFAULT_TARGETS[backbone.architecture]);
  const scale = scaling(o);
  const rng = createRng(o.seed);
  const pairs: LoraPair[] = sites.map((site) => {
    const a = kaimingUniform(rng.fork(), [site.inFeatures, o.r], site.inFeatures);
    const b = o.init === 'random' ? uniform(rng.fork(), [o.r, site.outFeatures], -0.5, 0.5) : tf.zeros([o.r, site.outFeatures]);
    return { site, a: ownedVariable(a), b: ownedVariable(b) };
  });
  const variables = new Map<string, Variable>();
  for (const p of pairs) {
    variables.set(peftKey(p.site.name, 'lora_A.weight'), p.a);
    variables.set(peftKey(p.site.name, 'lora_B.weight'), p.b);
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
  const beforeMerge = new Map<LoraPair, Tensor>();

  return defineDelta({
    name,
    method: 'lora',
    version: LORA_VERSION,
    backbone,
    variables,
    borrowed,
    sites: sites.map((s) => s.name),
    register: () =>
      pairs.map((p) =>
        backbone.hooks.add(
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
    config: () => configToPeft(o, backbone, sites),
    tensors: () => {
      // PEFT stores A as [r, in] and B as [out, r]: transpose ours.
      const out = new Map<string, Tensor>();
      for (const p of pairs) {
        out.set(peftKey(p.site.name, 'lora_A.weight'), tf.transpose(p.a));
        out.set(peftKey(p.site.name, 'lora_B.weight'), tf.transpose(p.b));
      }
      for (const s of biasSites) if (s.bias) out.set(peftKey(s.name, 'bias'), s.bias);
      return out;
    },
    expectedShapes: () => {
      const shapes = new Map<string, readonly number[]>();
      for (const p of pairs) {
        shapes.set(peftKey(p.site.name, 'lora_A.weight'), [o.r, p.site.inFeatures]);
        shapes.set(peftKey(p.site.name, 'lora_B.weight'), [p.site.outFeatures, o.r]);
      }
      for (const s of biasSites) if (s.bias) shapes.set(peftKey(s.name, 'bias'), s.bias.shape);
      return shapes;
    },
    assign: (tensors) => {
      for (const p of pairs) {
        tf.tidy(() => {
          p.a.assign(tf.transpose(tensors.get(peftKey(p.site.name, 'lora_A.weight'))!));
          p.b.assign(tf.transpose(tensors.get(peftKey(p.site.name, 'lora_B.weight'))!));
        });
      }
      for (const s of biasSites) if (s.bias) s.bias.assign(tensors.get(peftKey(s.name, 'bias'))!);
    },
    // Merge keeps the original kernels, so unmerge restores them bit for bit (subtracting the
    // update back out, as PEFT does, leaves float rounding behind).
    merge: () => {
      for (const p of pairs) {
        beforeMerge.set(p, tf.clone(p.site.kernel));
        tf.tidy(() => p.site.kernel.assign(tf.add(p.site.kernel, delta(p))));
      }
    },
    unmerge: () => {
      for (const [p, original] of beforeMerge) {
        p.site.kernel.assign(original);
        original.dispose();
      }
      beforeMerge.clear();
    },
    dispose: () => {
      for (const [v, original] of originals) {
        v.assign(original);
        v.trainable = false;
        original.dispose();
      }
    },
  });
}

/** `r * (in + out)` for each targeted site: the closed form the accounting must agree with. */
export function loraParameterFormula(backbone: Backbone, options: Partial<LoraOptions> = {}): number {
  const o = { ...LORA_DEFAULTS, ...options };
  return selectSites(backbone.sites, 'linear', o, DEFAULT_TARGETS[backbone.architecture]).reduce(
    (n, s) => n + o.r * (s.inFeatures + s.outFeatures),
    0,
  );
}
