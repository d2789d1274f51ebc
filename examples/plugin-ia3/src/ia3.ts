import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  compilePattern,
  defineDelta,
  defineOptions,
  DeltaTuneError,
  option,
  ownedVariable,
  selectSites,
  TARGETING_OPTIONS,
  type Backbone,
  type Delta,
  type DeltaSpec,
  type LinearSite,
  type OptionField,
  type OptionsOf,
} from '@deltatune/core';

import { IA3_CORE_RANGE, IA3_VERSION } from './version';

export { IA3_VERSION };

/** IA3's options, declared once: the type, the `--opt` parser, the checks and the help text. */
export const IA3_OPTIONS = defineOptions('ia3', {
  ...TARGETING_OPTIONS,
  // PEFT's defaults for BERT-style models: keys, values, and the feed-forward output projection.
  targets: { ...TARGETING_OPTIONS.targets, default: ['key', 'value', 'output.dense'] } as OptionField<readonly string[], true>,
  feedforward: option(
    'strings',
    'of the targeted sites, those whose input is scaled (the feed-forward output projection); the others get their output scaled',
    ['output.dense'],
  ),
  seed: option('integer', "accepted like every method's seed; IA3 starts at ones, so it changes nothing", 0),
});

export type Ia3Options = OptionsOf<typeof IA3_OPTIONS>;
export const IA3_DEFAULTS = IA3_OPTIONS.defaults;

interface Scale {
  readonly site: LinearSite;
  readonly feedforward: boolean;
  readonly vector: Variable;
}

/** PEFT's tensor name; its shape is `[out, 1]` for output scaling and `[1, in]` for input scaling. */
const keyOf = (site: string) => `base_model.model.${site}.ia3_l`;

/**
 * IA3 (Liu et al. 2022): learned vectors, initialised to ones, that rescale activations:
 * `y = (x W + b) * l` on keys/values, `y = (x * l) W + b` on the feed-forward output projection.
 */
export function ia3(options: Partial<Ia3Options> = {}): DeltaSpec<Ia3Options> {
  const o = IA3_OPTIONS.resolve(options);
  return {
    method: 'ia3',
    version: IA3_VERSION,
    coreRange: IA3_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachIa3(backbone, name, o),
  };
}

function attachIa3(backbone: Backbone, name: string, o: Ia3Options): Delta {
  const isFeedforward = o.feedforward.map((p) => compilePattern(p));
  const scales: Scale[] = selectSites(backbone.sites, 'linear', o).map((site) => {
    const feedforward = isFeedforward.some((test) => test(site.name));
    return { site, feedforward, vector: ownedVariable(tf.ones([feedforward ? site.inFeatures : site.outFeatures])) };
  });
  return defineDelta({
    name,
    method: 'ia3',
    version: IA3_VERSION,
    backbone,
    variables: new Map(scales.map((s) => [keyOf(s.site.name), s.vector])),
    sites: scales.map((s) => s.site.name),
    register: () =>
      scales.map((s) =>
        backbone.hooks.add(
          'linear',
          s.site.name,
          s.feedforward ? { input: (x) => tf.mul(x, s.vector) } : { output: (_x, y) => tf.mul(y, s.vector) },
          { owner: name },
        ),
      ),
    config: () => ({
      peft_type: 'IA3',
      task_type: null,
      inference_mode: true,
      target_modules: scales.map((s) => s.site.name),
      feedforward_modules: scales.filter((s) => s.feedforward).map((s) => s.site.name),
      fan_in_fan_out: backbone.architecture === 'gpt2',
      init_ia3_weights: true,
      modules_to_save: null,
    }),
    tensors: () =>
      new Map<string, Tensor>(scales.map((s) => [keyOf(s.site.name), tf.reshape(s.vector, s.feedforward ? [1, -1] : [-1, 1])])),
    expectedShapes: () =>
      new Map(scales.map((s) => [keyOf(s.site.name), s.feedforward ? [1, s.site.inFeatures] : [s.site.outFeatures, 1]])),
    assign: (tensors) => {
      for (const s of scales) tf.tidy(() => s.vector.assign(tf.reshape(tensors.get(keyOf(s.site.name))!, [-1])));
    },
    // Scaling the output scales W's columns and b; scaling the input scales W's rows. Core
    // snapshots those weights first, so unmerging restores them exactly (dividing back by a scale
    // would round, and a scale that reached 0 cannot be divided out at all).
    merge: () => {
      for (const s of scales) tf.tidy(() => rescale(s));
    },
    mergeWeights: () => scales.flatMap((s) => (s.feedforward || !s.site.bias ? [s.site.kernel] : [s.site.kernel, s.site.bias])),
  });
}

function rescale(s: Scale): void {
  if (s.feedforward) {
    s.site.kernel.assign(tf.mul(s.site.kernel, tf.reshape(s.vector, [-1, 1])));
  } else {
    s.site.kernel.assign(tf.mul(s.site.kernel, s.vector));
    if (s.site.bias) s.site.bias.assign(tf.mul(s.site.bias, s.vector));
  }
}

/**
 * IA3 options from PEFT's `adapter_config.json`. A wrong type is an error naming the field: a
 * plugin gets whatever JSON the file holds, and a TypeError or NaN outputs say nothing useful.
 */
export function ia3FromPeft(raw: Record<string, unknown>): Partial<Ia3Options> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DeltaTuneError(
      `adapter_config.json holds ${JSON.stringify(raw)}, not a JSON object`,
      'restore the file, or save the delta again',
    );
  }
  const config = raw;
  if (config.peft_type !== 'IA3')
    throw new DeltaTuneError(
      `not an IA3 adapter (peft_type ${JSON.stringify(config.peft_type)})`,
      'load it with the method for its peft_type',
    );
  const modules = (key: string): string[] | undefined => {
    const v = config[key];
    if (typeof v === 'string') return [`/^(?:${v})$/`];
    if (v === null || v === undefined || (Array.isArray(v) && v.every((x) => typeof x === 'string')))
      return (v as string[] | null) ?? undefined;
    throw new DeltaTuneError(
      `adapter_config.json: "${key}" is ${JSON.stringify(v)}, not a string or a list of strings`,
      `set "${key}" to module names such as ["key", "value"]`,
    );
  };
  for (const key of ['fan_in_fan_out', 'init_ia3_weights']) {
    const v = config[key];
    if (v !== null && v !== undefined && typeof v !== 'boolean') {
      throw new DeltaTuneError(
        `adapter_config.json: "${key}" is ${JSON.stringify(v)}, not true or false`,
        `set "${key}" to true or false (JSON booleans, no quotes)`,
      );
    }
  }
  const targets = modules('target_modules');
  const feedforward = modules('feedforward_modules') ?? [];
  // PEFT refuses this too: a feed-forward module that is not a target would get no vector.
  const stray = Array.isArray(config.target_modules) ? feedforward.find((f) => !targets!.includes(f)) : undefined;
  if (stray !== undefined) {
    throw new DeltaTuneError(
      `adapter_config.json: "feedforward_modules" holds "${stray}", which is not in "target_modules"`,
      'list every feed-forward module in target_modules too',
    );
  }
  return { targets, feedforward };
}
