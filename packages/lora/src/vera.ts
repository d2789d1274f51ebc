import * as tf from '@tensorflow/tfjs-core';
import type { Tensor, Variable } from '@tensorflow/tfjs-core';
import {
  configFields,
  createRng,
  defineDelta,
  DeltaTuneError,
  defineOptions,
  kaimingUniform,
  option,
  ownedVariable,
  selectSites,
  TARGETING_OPTIONS,
  type Backbone,
  type DeltaMethod,
  type DeltaSpec,
  type LinearSite,
  type OptionsOf,
} from '@deltatune/core';
import { DEFAULT_TARGETS } from './options';
import { peftKey } from './peft';
import { LORA_CORE_RANGE, LORA_VERSION } from './version';

const { bool, clip, configObject, fieldError, namesOrRegex, num, requiredNum } = configFields;

/** VeRA's options, declared once: the type, the `--opt` parser, the checks and the help text. */
export const VERA_OPTIONS = defineOptions('vera', {
  r: option('positiveInteger', 'rank of the shared random projections A and B', 256),
  dInitial: option('finite', 'initial value of every lambda_d entry (PEFT d_initial)', 0.1),
  seed: option('integer', 'seed of the shared projections A and B (PEFT projection_prng_key)', 0),
  saveProjection: option(
    'boolean',
    "save A and B with the delta (PEFT save_projection); false: regenerate them from the seed at load (our generator, not PyTorch's)",
    true,
  ),
  dropout: option('probability', "dropout on the VeRA path's input during training", 0),
  ...TARGETING_OPTIONS,
});

export type VeraOptions = OptionsOf<typeof VERA_OPTIONS>;

/** Saved names of the shared projections, PEFT's (`base_model.vera_A` `[r, max_in]`, `base_model.vera_B` `[max_out, r]`). */
export const VERA_A = 'base_model.vera_A';
export const VERA_B = 'base_model.vera_B';

/**
 * The shared projections for a set of sites, tfjs layout: A `[maxIn, r]`, B `[r, maxOut]`, both
 * Kaiming-uniform from `seed` (bounds `1/sqrt(maxIn)` and `1/sqrt(r)`, PEFT's fan-ins). Deterministic:
 * the same seed and sizes give the same values, which is how `saveProjection: false` reloads.
 */
export function veraProjections(seed: number, r: number, maxIn: number, maxOut: number): { a: Tensor; b: Tensor } {
  const rng = createRng(seed);
  const a = kaimingUniform(rng.fork(), [maxIn, r], maxIn);
  const b = kaimingUniform(rng.fork(), [r, maxOut], r);
  return { a, b };
}

interface VeraSite {
  site: LinearSite;
  /** `[out]`, trainable, zero at init. */
  lambdaB: Variable;
  /** `[r]`, trainable, `dInitial` at init. */
  lambdaD: Variable;
}

/** A site's slices of the shared projections: A `[in, r]`, B `[r, out]` (the top-left block in PEFT's layout). */
function slices(a: Tensor, b: Tensor, site: LinearSite, r: number): [Tensor, Tensor] {
  return [tf.slice(a, [0, 0], [site.inFeatures, r]), tf.slice(b, [0, 0], [r, site.outFeatures])];
}

/** The dense update `[in, out]`: `(A ⊙ lambda_d) (B ⊙ lambda_b)`, PEFT's `(lambda_b B) (lambda_d A)` transposed. */
function denseUpdate(a: Tensor, b: Tensor, s: VeraSite, r: number): Tensor {
  const [as, bs] = slices(a, b, s.site, r);
  return tf.matMul(tf.mul(as, s.lambdaD), tf.mul(bs, s.lambdaB));
}

/**
 * VeRA (Kopiczko et al. 2024) on linear sites: `y = x W + b + lambda_b ⊙ ((lambda_d ⊙ (x A)) B)`, with one
 * frozen random pair A, B for the whole delta (sized to the largest targeted in/out; each site uses
 * the top-left slice) and `r + out` trainable parameters per site. Saved as PEFT's VERA folders.
 */
export function vera(options: Partial<VeraOptions> = {}): DeltaSpec<VeraOptions> {
  const o = VERA_OPTIONS.resolve(options);
  return {
    method: 'vera',
    version: LORA_VERSION,
    coreRange: LORA_CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachVera(backbone, name, o),
  };
}

function attachVera(backbone: Backbone, name: string, o: VeraOptions) {
  const sites = selectSites(backbone.sites, 'linear', o, DEFAULT_TARGETS[backbone.architecture]);
  const maxIn = Math.max(...sites.map((s) => s.inFeatures));
  const maxOut = Math.max(...sites.map((s) => s.outFeatures));
  const projections = veraProjections(o.seed, o.r, maxIn, maxOut);
  const a = ownedVariable(projections.a, false);
  const b = ownedVariable(projections.b, false);
  const buffers = new Map<string, Variable>([
    [VERA_A, a],
    [VERA_B, b],
  ]);
  const per: VeraSite[] = sites.map((site) => ({
    site,
    lambdaB: ownedVariable(tf.zeros([site.outFeatures])),
    lambdaD: ownedVariable(tf.fill([o.r], o.dInitial)),
  }));
  const variables = new Map<string, Variable>();
  for (const p of per) {
    variables.set(peftKey(p.site.name, 'vera_lambda_b'), p.lambdaB);
    variables.set(peftKey(p.site.name, 'vera_lambda_d'), p.lambdaD);
  }
  return defineDelta({
    name,
    method: 'vera',
    version: LORA_VERSION,
    backbone,
    variables,
    buffers,
    sites: sites.map((s) => s.name),
    register: () =>
      per.map((p) =>
        backbone.hooks.add(
          'linear',
          p.site.name,
          {
            output: (x, y, _site, ctx) => {
              const input = ctx.training && o.dropout > 0 ? tf.dropout(x, o.dropout) : x;
              const flat = tf.reshape(input, [-1, p.site.inFeatures]) as tf.Tensor2D;
              const [as, bs] = slices(a, b, p.site, o.r);
              const update = tf.mul(tf.matMul(tf.mul(tf.matMul(flat, as), p.lambdaD), bs), p.lambdaB);
              return tf.add(y, tf.reshape(update, y.shape));
            },
          },
          { owner: name },
        ),
      ),
    config: () => ({
      peft_type: 'VERA',
      task_type: null,
      base_model_name_or_path: null,
      inference_mode: true,
      r: o.r,
      target_modules: sites.map((s) => s.name),
      projection_prng_key: o.seed,
      save_projection: o.saveProjection,
      vera_dropout: o.dropout,
      d_initial: o.dInitial,
      fan_in_fan_out: backbone.architecture === 'gpt2',
      bias: 'none',
      modules_to_save: null,
      init_weights: true,
      layers_to_transform: null,
      layers_pattern: null,
    }),
    tensors: () => {
      const out = new Map<string, Tensor>();
      // PEFT's layout: vera_A [r, max_in], vera_B [max_out, r].
      if (o.saveProjection) {
        out.set(VERA_A, tf.transpose(a));
        out.set(VERA_B, tf.transpose(b));
      }
      for (const [k, v] of variables) out.set(k, v);
      return out;
    },
    expectedShapes: () => {
      const shapes = new Map<string, readonly number[]>();
      if (o.saveProjection) {
        shapes.set(VERA_A, [o.r, maxIn]);
        shapes.set(VERA_B, [maxOut, o.r]);
      }
      for (const [k, v] of variables) shapes.set(k, v.shape);
      return shapes;
    },
    assign: (tensors) => {
      tf.tidy(() => {
        // Without saved projections A and B stay as the seed made them at attach.
        if (o.saveProjection) {
          a.assign(tf.transpose(tensors.get(VERA_A)!));
          b.assign(tf.transpose(tensors.get(VERA_B)!));
        }
        for (const [k, v] of variables) if (tensors.get(k) !== v) v.assign(tensors.get(k)!);
      });
    },
    // Core snapshots the kernels first, so unmerge restores them bit for bit.
    merge: () => {
      for (const p of per) tf.tidy(() => p.site.kernel.assign(tf.add(p.site.kernel, denseUpdate(a, b, p, o.r))));
    },
    mergeWeights: () => per.map((p) => p.site.kernel),
  });
}

/** Fields we read, or that carry nothing for inference. */
const KNOWN = new Set([
  'peft_type',
  'task_type',
  'base_model_name_or_path',
  'inference_mode',
  'revision',
  'peft_version',
  'auto_mapping',
  'r',
  'target_modules',
  'projection_prng_key',
  'save_projection',
  'vera_dropout',
  'd_initial',
  'fan_in_fan_out',
  'bias',
  'modules_to_save',
  'init_weights',
  'layers_to_transform',
  'layers_pattern',
  'deltatune',
]);

/**
 * VeRA options from a PEFT `adapter_config.json` (peft_type VERA). A folder PEFT wrote with
 * `save_projection: false` holds no A and B, and PyTorch's generator cannot be reproduced here:
 * refused. Ours with `save_projection: false` (stamped by deltatune) regenerate them from the seed.
 */
export function veraOptionsFromPeft(raw: Record<string, unknown>): { options: Partial<VeraOptions>; warnings: string[] } {
  const config = configObject(raw);
  if (config.peft_type !== 'VERA') {
    throw new DeltaTuneError(
      `adapter_config.json has peft_type ${JSON.stringify(config.peft_type)}, not VERA`,
      'load it with the method for that peft_type',
    );
  }
  const saveProjection = bool(config, 'save_projection', true);
  const ours = (config.deltatune as { method?: unknown } | undefined)?.method === 'vera';
  if (!saveProjection && !ours) {
    throw new DeltaTuneError(
      'adapter_config.json is a PEFT VeRA adapter saved with save_projection: false: its A and B come from ' +
        "PyTorch's random generator, which @deltatune/lora cannot reproduce",
      'save it again in Python with save_projection=True',
    );
  }
  if (config.bias !== undefined && config.bias !== null && config.bias !== 'none') {
    throw fieldError('bias', `is ${clip(JSON.stringify(config.bias))}: trained biases are not supported by VeRA here`, 'use "none"');
  }
  const targets = namesOrRegex(config, 'target_modules');
  if (Array.isArray(targets) && targets.length === 0) {
    throw fieldError('target_modules', 'is an empty list: the adapter would change no module', 'list the modules it was trained on');
  }
  bool(config, 'fan_in_fan_out');
  const layers = config.layers_to_transform;
  if (layers !== null && layers !== undefined) {
    throw fieldError('layers_to_transform', 'is set: not supported for VeRA here', 'set it to null');
  }
  const warnings = Object.keys(config)
    .filter((k) => !KNOWN.has(k))
    .map((k) => `adapter_config.json field "${k}" is not known to @deltatune/lora's VeRA and was ignored`);
  return {
    options: {
      r: requiredNum(config, 'r', 'positiveInteger'),
      seed: num(config, 'projection_prng_key', 'integer', 0),
      saveProjection,
      dropout: num(config, 'vera_dropout', 'probability', 0),
      dInitial: num(config, 'd_initial', 'finite', 0.1),
      targets: typeof targets === 'string' ? new RegExp(`^(?:${targets})$`) : targets,
    },
    warnings,
  };
}

/** VeRA as the method registry knows it: `--method vera`, and PEFT VERA folders. */
export const veraMethod: DeltaMethod<VeraOptions> = {
  name: 'vera',
  version: LORA_VERSION,
  coreRange: LORA_CORE_RANGE,
  packageName: '@deltatune/lora',
  peftType: 'VERA',
  description:
    'Vector-based random matrix adaptation (Kopiczko et al. 2024): frozen shared random A, B; ' +
    'lambda_b ⊙ B (lambda_d ⊙ A x); r + out parameters per targeted layer',
  create: (options) => vera(options),
  options: VERA_OPTIONS,
  fromConfig: (config) => {
    const { options, warnings } = veraOptionsFromPeft(config);
    for (const w of warnings) console.warn(`warning: ${w}`);
    return vera(options);
  },
};
