// The simplified VeRA of docs/writing-a-method.md ("VeRA: frozen buffers"), kept here so the doc's code
// compiles, keeps the delta-method contract and computes what the real `vera()` does. Edit the two together.
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  attach,
  defineDelta,
  ownedVariable,
  selectSites,
  type Backbone,
  type Delta,
  type DeltaSpec,
  type LinearSite,
} from '@deltatune/core';
import {
  DEFAULT_TARGETS,
  LORA_VERSION,
  peftKey,
  vera,
  VERA_A,
  VERA_B,
  VERA_OPTIONS,
  veraProjections,
  type VeraOptions,
} from '@deltatune/lora';
import { describeConformance } from '../../../test-conformance';
import { ALL_LLAMA, forward, load, maxDiff, perturb } from './fixtures/method-models';

function attachDocVera(backbone: Backbone, name: string, o: VeraOptions): Delta {
  // From the doc's first snippet.
  const sites = selectSites(backbone.sites, 'linear', o, DEFAULT_TARGETS[backbone.architecture]); // PEFT's: query, value on BERT
  const maxIn = Math.max(...sites.map((s) => s.inFeatures));
  const maxOut = Math.max(...sites.map((s) => s.outFeatures));
  const projections = veraProjections(o.seed, o.r, maxIn, maxOut); // kaimingUniform from createRng(seed): same seed, same A, B
  const a = ownedVariable(projections.a, false); // [maxIn, r], frozen
  const b = ownedVariable(projections.b, false); // [r, maxOut], frozen
  const per = sites.map((site) => ({
    site,
    lambdaB: ownedVariable(tf.zeros([site.outFeatures])), // zero: identity at init
    lambdaD: ownedVariable(tf.fill([o.r], o.dInitial)),
  }));
  const variables = new Map<string, Variable>();
  for (const p of per) {
    variables.set(peftKey(p.site.name, 'vera_lambda_b'), p.lambdaB);
    variables.set(peftKey(p.site.name, 'vera_lambda_d'), p.lambdaD);
  }
  // A site's blocks of the shared pair: A [in, r], B [r, out] (vera.ts: `slices`).
  const slices = (s: LinearSite) => [tf.slice(a, [0, 0], [s.inFeatures, o.r]), tf.slice(b, [0, 0], [o.r, s.outFeatures])];
  // From the doc's second snippet (vera.ts's, two comments added).
  const tensors = () => {
    const out = new Map<string, Tensor>();
    // PEFT's layout: vera_A [r, max_in], vera_B [max_out, r].
    if (o.saveProjection) {
      out.set(VERA_A, tf.transpose(a)); // freed by core at the next save or detach
      out.set(VERA_B, tf.transpose(b));
    }
    for (const [k, v] of variables) out.set(k, v);
    return out;
  };
  const expectedShapes = () => {
    const shapes = new Map<string, readonly number[]>();
    if (o.saveProjection) {
      shapes.set(VERA_A, [o.r, maxIn]);
      shapes.set(VERA_B, [maxOut, o.r]);
    }
    for (const [k, v] of variables) shapes.set(k, v.shape);
    return shapes;
  };
  const assign = (tensors: ReadonlyMap<string, Tensor>) => {
    tf.tidy(() => {
      // Without saved projections A and B stay as the seed made them at attach.
      if (o.saveProjection) {
        a.assign(tf.transpose(tensors.get(VERA_A)!));
        b.assign(tf.transpose(tensors.get(VERA_B)!));
      }
      for (const [k, v] of variables) if (tensors.get(k) !== v) v.assign(tensors.get(k)!); // a state fresh from save()
    });
  };
  return defineDelta({
    name,
    method: 'vera',
    version: LORA_VERSION,
    backbone,
    sites: sites.map((s) => s.name),
    variables,
    buffers: new Map([
      [VERA_A, a],
      [VERA_B, b],
    ]), // 'base_model.vera_A', 'base_model.vera_B'
    register: () =>
      per.map((p) =>
        backbone.hooks.add(
          'linear',
          p.site.name,
          {
            output: (x, y) => {
              const [as, bs] = slices(p.site);
              const flat = tf.reshape(x, [-1, p.site.inFeatures]) as tf.Tensor2D;
              const update = tf.mul(tf.matMul(tf.mul(tf.matMul(flat, as), p.lambdaD), bs), p.lambdaB);
              return tf.add(y, tf.reshape(update, y.shape));
            },
          },
          { owner: name },
        ),
      ),
    config: () => ({ peft_type: 'VERA', r: o.r, projection_prng_key: o.seed, save_projection: o.saveProjection }),
    tensors,
    expectedShapes,
    assign,
    merge: () => {
      for (const p of per)
        tf.tidy(() => {
          const [as, bs] = slices(p.site); // the dense update [in, out]
          p.site.kernel.assign(tf.add(p.site.kernel, tf.matMul(tf.mul(as, p.lambdaD), tf.mul(bs, p.lambdaB))));
        });
    },
    mergeWeights: () => per.map((p) => p.site.kernel),
  });
}

function docVera(options: Partial<VeraOptions> = {}): DeltaSpec<VeraOptions> {
  const o = VERA_OPTIONS.resolve(options);
  return { method: 'vera', version: LORA_VERSION, coreRange: vera().coreRange, options: o, attach: (b, name) => attachDocVera(b, name, o) };
}

describeConformance("the doc's simplified VeRA", () => docVera({ r: 4 }), { identityAtInit: true });
describeConformance("the doc's simplified VeRA without saved projections", () => docVera({ r: 4, saveProjection: false }), {
  identityAtInit: true,
});

describe("the doc's simplified VeRA", () => {
  it.each([
    ['bert', {}],
    ['bert', { saveProjection: false }],
    ['llama', { targets: ALL_LLAMA }],
  ] as const)('saves what the real vera() loads, to the same %s output (%j), with the same parameter count', (m, extra) => {
    const model = load(m);
    const mine = attach(model, docVera({ r: 4, seed: 3, ...extra }));
    perturb(mine, 11, 0.5);
    const expected = forward(model, m);
    const state = mine.save();
    const saved = { config: state.config, tensors: new Map([...state.tensors].map(([k, t]) => [k, tf.clone(t)])) };
    const count = mine.parameterCount();
    mine.detach();
    const real = attach(model, vera({ r: 4, seed: 3, ...extra }));
    expect(real.parameterCount()).toBe(count);
    expect([...real.buffers.keys()]).toEqual([VERA_A, VERA_B]);
    real.load(saved);
    expect(maxDiff(forward(model, m), expected)).toBe(0);
    real.detach();
    tf.dispose([...saved.tensors.values()]);
    model.dispose();
  });
});
