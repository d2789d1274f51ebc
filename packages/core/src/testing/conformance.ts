import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { Backbone, BackboneInputs, BackboneOutputs } from '../backbone';
import { attach } from '../delta';
import type { Delta, DeltaSpec, DeltaState } from '../method';
import { createRng, normal } from '../random';

/**
 * The contract every delta method keeps, as checks a method package runs on its own method (any
 * test runner: each check is a name and an async function that throws on failure):
 *
 *   for (const check of conformanceChecks({ spec: () => lora({ r: 4 }), backbone, inputs })) it(check.name, check.run);
 */
export interface ConformanceSetup {
  /** The method under test, a fresh spec per call. */
  readonly spec: () => DeltaSpec<any>;
  /** A fresh backbone per call, with the same weights every time (seed it). */
  readonly backbone: () => Backbone | Promise<Backbone>;
  /** Inputs for one forward pass on that backbone; the checks dispose them. */
  readonly inputs: (backbone: Backbone) => BackboneInputs;
  /**
   * Whether a fresh delta leaves the output exactly as the base model's (LoRA, adapters, IA3,
   * BitFit: yes; prompt and prefix tuning add positions: no).
   */
  readonly identityAtInit: boolean;
  /** Largest absolute difference allowed where float rounding may differ (merged vs unmerged). Default 1e-4. */
  readonly tolerance?: number;
  /**
   * The spec a saved state loads into, where it differs from `spec`: a method that saves its
   * inference form (prefix tuning's projection saves the table the MLP computes, as PEFT does).
   */
  readonly reloadAs?: () => DeltaSpec<any>;
  /** The output compared: default the last hidden state without prepended positions, else `pooled`. */
  readonly output?: (out: BackboneOutputs) => Tensor;
}

export interface ConformanceCheck {
  readonly name: string;
  run(): Promise<void>;
}

class ConformanceError extends Error {}

function fail(message: string): never {
  throw new ConformanceError(message);
}

/** The compared output: the real positions' hidden states (prompt tuning prepends its own). */
function defaultOutput(out: BackboneOutputs): Tensor {
  const h = out.lastHiddenState;
  if (!h) return out.pooled;
  const n = out.prependedPositions;
  return n > 0 ? tf.slice(h, [0, n, 0], [-1, -1, -1]) : h;
}

/** A copy of a saved state the caller owns (the delta owns what `save()` returns). */
function copyState(state: DeltaState): { config: Record<string, unknown>; tensors: Map<string, Tensor> } {
  return { config: state.config, tensors: new Map([...state.tensors].map(([k, t]) => [k, tf.clone(t)])) };
}

async function read(t: Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) fail(`outputs differ in size: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** Values of every base parameter, to prove a method left them bit for bit as they were. */
async function baseValues(backbone: Backbone): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of backbone.parameters) out.set(k, (await v.data()).slice() as Float32Array);
  return out;
}

async function sameBase(before: Map<string, Float32Array>, backbone: Backbone, when: string): Promise<void> {
  for (const [k, v] of backbone.parameters) {
    const now = (await v.data()) as Float32Array;
    const was = before.get(k)!;
    for (let i = 0; i < was.length; i++) {
      if (!Object.is(now[i], was[i])) fail(`${when}: base parameter ${k}[${i}] is ${now[i]}, was ${was[i]} (must be restored exactly)`);
    }
  }
}

/** Moves every variable of the delta away from its initial value, so the delta changes the output. */
function perturb(delta: Delta, seed: number): void {
  const rng = createRng(seed);
  for (const v of delta.variables.values()) {
    tf.tidy(() => v.assign(tf.add(v, normal(rng.fork(), v.shape, 0.05))));
  }
}

/** The fields every check uses: a backbone, its inputs, and a forward pass read to the CPU. */
async function harness(setup: ConformanceSetup) {
  const backbone = await setup.backbone();
  const inputs = setup.inputs(backbone);
  const pick = setup.output ?? defaultOutput;
  const forward = async (): Promise<Float32Array> => {
    const out = tf.tidy(() => pick(backbone.forward(inputs)));
    const values = (await read(out)).slice();
    out.dispose();
    return values;
  };
  const close = () => {
    tf.dispose(Object.values(inputs) as Tensor[]);
    backbone.dispose();
  };
  return { backbone, forward, close };
}

async function withHarness(setup: ConformanceSetup, body: (h: Awaited<ReturnType<typeof harness>>) => Promise<void>): Promise<void> {
  const h = await harness(setup);
  try {
    await body(h);
  } finally {
    h.close();
  }
}

export function conformanceChecks(setup: ConformanceSetup): ConformanceCheck[] {
  const tol = setup.tolerance ?? 1e-4;
  const method = setup.spec().method;
  const checks: ConformanceCheck[] = [];
  const check = (name: string, run: () => Promise<void>) => checks.push({ name: `${method}: ${name}`, run });

  if (setup.identityAtInit) {
    check('a fresh delta computes exactly what the base model does', () =>
      withHarness(setup, async ({ backbone, forward }) => {
        const base = await forward();
        const delta = attach(backbone, setup.spec());
        const withDelta = await forward();
        const d = maxAbsDiff(base, withDelta);
        if (d !== 0) fail(`output moved by ${d} at init; a method that claims identity at init must change nothing`);
        delta.detach();
      }),
    );
  }

  check('a trained delta changes the output, and detach restores the base model exactly', () =>
    withHarness(setup, async ({ backbone, forward }) => {
      const base = await forward();
      const before = await baseValues(backbone);
      const delta = attach(backbone, setup.spec());
      perturb(delta, 1);
      const changed = maxAbsDiff(base, await forward());
      if (!(changed > tol))
        fail(`perturbing every variable moved the output by only ${changed}: the delta's hooks do not reach the output`);
      delta.detach();
      if (backbone.hooks.size !== 0) fail(`${backbone.hooks.size} hooks are left after detach`);
      await sameBase(before, backbone, 'after detach');
      const after = maxAbsDiff(base, await forward());
      if (after !== 0) fail(`after detach the output differs from the base model's by ${after}`);
    }),
  );

  check('save then load into a fresh delta on a fresh backbone gives the same output', async () => {
    let saved: { config: Record<string, unknown>; tensors: Map<string, Tensor> } | undefined;
    let expected: Float32Array | undefined;
    await withHarness(setup, async ({ backbone, forward }) => {
      const delta = attach(backbone, setup.spec());
      perturb(delta, 2);
      expected = await forward();
      const state = delta.save();
      const json = JSON.parse(JSON.stringify(state.config)) as Record<string, unknown>;
      // The delta owns what save() returned: copy it out before the backbone goes.
      saved = { ...copyState(state), config: json };
      delta.detach();
    });
    try {
      await withHarness(setup, async ({ backbone, forward }) => {
        const delta = attach(backbone, (setup.reloadAs ?? setup.spec)());
        delta.load(saved!);
        const d = maxAbsDiff(expected!, await forward());
        if (d > tol) fail(`the reloaded delta's output differs by ${d}`);
        delta.detach();
      });
    } finally {
      tf.dispose([...saved!.tensors.values()]);
    }
  });

  check('the parameter count equals the elements of the saved trainable tensors', () =>
    withHarness(setup, async ({ backbone }) => {
      const delta = attach(backbone, setup.spec());
      const count = delta.parameterCount();
      const variables = [...delta.variables.values()].reduce((n, v) => n + v.size, 0);
      if (count !== variables) fail(`parameterCount() is ${count}, but the variables hold ${variables} elements`);
      const state = delta.save();
      const bufferNames = new Set(delta.buffers.keys());
      const saved = [...state.tensors].filter(([k]) => !bufferNames.has(k)).reduce((n, [, t]) => n + t.size, 0);
      if (count === 0) fail('the delta has no parameters');
      delta.detach();
      // What is saved is what the reloaded delta trains (the same delta, unless it saves its inference form).
      const reloaded = setup.reloadAs ? attach(backbone, setup.reloadAs()) : undefined;
      const expected = reloaded ? reloaded.parameterCount() : count;
      reloaded?.detach();
      if (saved !== expected) fail(`the saved tensors hold ${saved} elements (buffers aside), parameterCount() says ${expected}`);
    }),
  );

  check(
    'merging gives the unmerged output, load() while merged loads, and unmerging restores the base weights exactly (where the method merges)',
    () =>
      withHarness(setup, async ({ backbone, forward }) => {
        const before = await baseValues(backbone);
        const delta = attach(backbone, setup.spec());
        if (!delta.merge || !delta.unmerge) {
          delta.detach();
          return; // the method does not merge: nothing to check
        }
        perturb(delta, 3);
        const unmerged = await forward();
        delta.merge();
        if (!delta.merged) fail('merged is false after merge()');
        const merged = await forward();
        const d = maxAbsDiff(unmerged, merged);
        if (d > tol) fail(`the merged output differs from the unmerged one by ${d}`);
        delta.unmerge();
        const again = maxAbsDiff(unmerged, await forward());
        if (again > tol) fail(`after unmerge the output differs by ${again}`);
        // Loading into a merged delta must replace what is folded into the weights, not add to it.
        const first = delta.save();
        const firstCopy = copyState(first);
        perturb(delta, 5);
        delta.merge();
        delta.load(firstCopy);
        tf.dispose([...firstCopy.tensors.values()]);
        if (!delta.merged) fail('load() on a merged delta left it unmerged');
        const reloaded = maxAbsDiff(unmerged, await forward());
        if (reloaded > tol)
          fail(`load() on a merged delta gives an output ${reloaded} away from the loaded values' (stale merged weights?)`);
        delta.unmerge();
        delta.detach();
        await sameBase(before, backbone, 'after merge, load while merged, unmerge and detach');
      }),
  );

  check('the live tensor count is flat across forward, save, load, merge and detach', () =>
    withHarness(setup, async ({ backbone, forward }) => {
      await forward(); // warm-up: backends cache a few tensors on first use
      const start = tf.memory().numTensors;
      for (let round = 0; round < 3; round++) {
        const delta = attach(backbone, setup.spec());
        perturb(delta, 4 + round);
        await forward();
        const state = delta.save();
        const copy = copyState(state);
        if (!setup.reloadAs) delta.load(copy);
        tf.dispose([...copy.tensors.values()]);
        delta.save();
        if (delta.merge && delta.unmerge) {
          delta.merge();
          await forward();
          delta.unmerge();
        }
        delta.detach();
        const now = tf.memory().numTensors;
        if (now !== start) fail(`round ${round + 1}: ${now - start} tensors more than before attach (a leak)`);
      }
    }),
  );

  return checks;
}
