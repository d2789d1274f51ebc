import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import {
  attach,
  attachedDeltas,
  defineDelta,
  defineOptions,
  DeltaTuneError,
  HookRegistry,
  option,
  ownedVariable,
  runLinear,
  snapshotWeights,
  TARGETING_OPTIONS,
  type Backbone,
  type DeltaSpec,
  type LinearSite,
  type OptionsOf,
} from '@deltatune/core';
import { conformanceChecks } from '@deltatune/core/testing';

/** A one-layer backbone: `pooled = x W + b` at one linear site, enough for the plugin contract. */
function linearBackbone(): Backbone {
  const kernel = tf.variable(
    tf.tensor2d([
      [1, 2],
      [3, -4],
      [0.5, 6],
    ]),
    false,
  );
  const bias = tf.variable(tf.tensor1d([0.25, -0.5]), false);
  const site: LinearSite = { kind: 'linear', name: 'layer.0.proj', layer: 0, inFeatures: 3, outFeatures: 2, kernel, bias };
  const hooks = new HookRegistry();
  return {
    architecture: 'toy',
    sites: [site],
    hooks,
    parameters: new Map([
      ['layer.0.proj.weight', kernel],
      ['layer.0.proj.bias', bias],
    ]),
    hiddenSize: 2,
    forward: (inputs, o = {}) => ({
      pooled: runLinear(hooks, site, tf.cast(inputs.inputIds, 'float32'), { training: !!o.training }),
      prependedPositions: 0,
    }),
    dispose: () => tf.dispose([kernel, bias]),
  };
}

const inputs = () => ({
  inputIds: tf.tensor2d([
    [1, 2, 3],
    [-1, 0, 2],
  ]),
  attentionMask: tf.ones([2, 3]),
});

const SCALED_OPTIONS = defineOptions('scaled', {
  rank: option('positiveInteger', 'rows of the frozen random projection', 2),
  mode: option(['rows', 'all'], 'what the magnitude scales', 'rows'),
  ...TARGETING_OPTIONS,
});
type ScaledOptions = OptionsOf<typeof SCALED_OPTIONS>;

/**
 * A toy VeRA/DoRA-style method through the weight hook: `W' = W * m + P^T d` with a trained
 * magnitude `m` (ones) and direction `d` (zeros), and `P` a frozen random buffer the delta saves.
 * `broken` leaves the buffer undisposed and merges without declaring its weights: what the
 * suite must catch.
 */
function scaled(options: Partial<ScaledOptions> = {}, broken = false): DeltaSpec<ScaledOptions> {
  const o = SCALED_OPTIONS.resolve(options);
  return {
    method: 'scaled',
    version: '1.0.0',
    coreRange: '^0.1.0',
    options: o,
    attach: (backbone, name) => {
      const site = backbone.sites[0] as LinearSite;
      const magnitude = ownedVariable(tf.ones([site.outFeatures]));
      const direction = ownedVariable(tf.zeros([o.rank, site.outFeatures]));
      const projection = ownedVariable(tf.randomNormal([o.rank, site.inFeatures], 0, 1, 'float32', 3), false);
      const effective = (kernel: tf.Tensor) => tf.add(tf.mul(kernel, magnitude), tf.matMul(projection, direction, true, false));
      const delta = defineDelta({
        name,
        method: 'scaled',
        version: '1.0.0',
        backbone,
        variables: new Map([
          ['m', magnitude],
          ['d', direction],
        ]),
        buffers: broken ? undefined : new Map([['P', projection]]),
        sites: [site.name],
        register: () => [backbone.hooks.add('linear', site.name, { weight: (w) => effective(w) }, { owner: name })],
        config: () => ({ rank: o.rank }),
        merge: () => tf.tidy(() => site.kernel.assign(effective(site.kernel))),
        mergeWeights: () => (broken ? [] : [site.kernel]),
      });
      return delta;
    },
  };
}

describe('the plugin API a third-party method is written against', () => {
  it('a weight hook replaces the effective weight the projection uses', async () => {
    const backbone = linearBackbone();
    const x = inputs();
    const base = backbone.forward(x).pooled.arraySync() as number[][];
    const delta = attach(backbone, scaled());
    expect(backbone.forward(x).pooled.arraySync()).toEqual(base); // m = 1, d = 0: W unchanged
    delta.variables.get('m')!.assign(tf.tensor1d([2, 0]));
    // [1,2,3] W = [1*1 + 2*3 + 3*0.5, 1*2 + 2*-4 + 3*6] = [8.5, 12]; column 0 doubled, column 1 zeroed, + b.
    const y = backbone.forward(x).pooled.arraySync() as number[][];
    expect(y[0][0]).toBeCloseTo(2 * 8.5 + 0.25, 5);
    expect(y[0][1]).toBeCloseTo(-0.5, 5);
    delta.detach();
    expect(backbone.forward(x).pooled.arraySync()).toEqual(base);
    backbone.dispose();
  });

  it('frozen buffers are saved and loaded with the delta, are not parameters, and are disposed on detach', () => {
    const backbone = linearBackbone();
    const delta = attach(backbone, scaled({ rank: 3 }));
    expect(delta.parameterCount()).toBe(2 + 3 * 2); // m and d only
    expect([...delta.buffers.keys()]).toEqual(['P']);
    const state = delta.save();
    expect([...state.tensors.keys()].sort()).toEqual(['P', 'd', 'm']);
    const p = delta.buffers.get('P')!;
    delta.load({ config: state.config, tensors: new Map([...state.tensors].map(([k, t]) => [k, k === 'P' ? tf.zerosLike(t) : t])) });
    expect(tf.sum(tf.abs(delta.buffers.get('P')!)).dataSync()[0]).toBe(0);
    const before = tf.memory().numTensors;
    delta.detach();
    expect(p.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before - 3);
    backbone.dispose();
  });

  it('snapshotWeights restores exactly where arithmetic would not (a scale that reached 0)', () => {
    const w = tf.variable(tf.tensor1d([0.1, 3, -7]));
    const snap = snapshotWeights([w]);
    w.assign(tf.mul(w, tf.tensor1d([0, 1.1, 3])));
    snap.restore();
    expect(Array.from(w.dataSync())).toEqual(Array.from(new Float32Array([0.1, 3, -7])));
    expect(() => snap.restore()).toThrow(/already restored/);
    w.dispose();
  });

  it('load() on a merged delta loads the new values and stays merged, with the base restorable exactly', () => {
    const backbone = linearBackbone();
    const x = inputs();
    const kernel = (backbone.sites[0] as LinearSite).kernel;
    const original = Array.from(kernel.dataSync());
    const delta = attach(backbone, scaled());
    const trained = {
      config: {},
      tensors: new Map([
        ['m', tf.tensor1d([3, 1])],
        ['d', tf.zeros([2, 2])],
        ['P', delta.buffers.get('P')!],
      ]),
    };
    delta.merge!();
    delta.load(trained);
    expect(delta.merged).toBe(true);
    const merged = backbone.forward(x).pooled.arraySync() as number[][];
    delta.unmerge!();
    expect(backbone.forward(x).pooled.arraySync()).toEqual(merged); // unmerged with the loaded m: same output
    expect(Array.from(kernel.dataSync())).toEqual(original);
    delta.detach();
    backbone.dispose();
  });

  it('default names are unique per backbone: the method name, then _2', () => {
    const backbone = linearBackbone();
    const a = attach(backbone, scaled());
    const b = attach(backbone, scaled());
    expect([a.name, b.name]).toEqual(['scaled', 'scaled_2']);
    expect(attachedDeltas(backbone).map((d) => d.name)).toEqual(['scaled', 'scaled_2']);
    expect(() => attach(backbone, scaled(), 'scaled')).toThrow(/already attached/);
    b.detach();
    a.detach();
    backbone.dispose();
  });

  it('one option schema parses --opt strings, checks options given in code, and describes itself', () => {
    expect(SCALED_OPTIONS.parse({ rank: '4', mode: 'all', targets: 'proj' })).toEqual({ rank: 4, mode: 'all', targets: ['proj'] });
    expect(() => SCALED_OPTIONS.parse({ rank: '0' })).toThrow(/scaled option rank=0 is not a positive integer/);
    expect(() => SCALED_OPTIONS.parse({ rnak: '4' })).toThrow(
      /scaled has no option "rnak"[\s\S]*known options: rank, mode, targets, exclude, layers/,
    );
    expect(SCALED_OPTIONS.resolve({ mode: 'all' })).toEqual({ rank: 2, mode: 'all' });
    const e = (() => {
      try {
        SCALED_OPTIONS.resolve({ mode: 'cols' as never });
      } catch (err) {
        return err as DeltaTuneError;
      }
    })();
    expect(e).toBeInstanceOf(DeltaTuneError);
    expect(e!.message).toMatch(/^scaled: mode must be one of rows, all, got cols/);
    expect(e!.fix).toBe('e.g. --opt mode=rows');
    expect(SCALED_OPTIONS.describe()[0]).toEqual({
      key: 'rank',
      accepts: 'a positive integer',
      default: '2',
      help: 'rows of the frozen random projection',
    });
  });
});

describe('the conformance suite (@deltatune/core/testing)', () => {
  const setup = { backbone: linearBackbone, inputs, identityAtInit: true };

  it('passes a method that keeps the contract', async () => {
    const checks = conformanceChecks({ ...setup, spec: () => scaled() });
    expect(checks.length).toBe(6);
    for (const c of checks) await c.run();
  });

  it('fails a method that leaks its buffer and merges without a snapshot, naming what is wrong', async () => {
    const failures: string[] = [];
    for (const c of conformanceChecks({ ...setup, spec: () => scaled({}, true) })) {
      await c.run().catch((e: Error) => failures.push(`${c.name}: ${e.message}`));
    }
    // Without `mergeWeights` nothing is restored: unmerge leaves the merged weights in place.
    expect(
      failures.some((f) => /merging gives[\s\S]*(output differs|base parameter)/.test(f)),
      failures.join('\n'),
    ).toBe(true);
    expect(
      failures.some((f) => /live tensor count[\s\S]*tensors more than before attach/.test(f)),
      failures.join('\n'),
    ).toBe(true);
  });
});
