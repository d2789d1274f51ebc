import { configFields, DeltaTuneError } from '@deltatune/core';
import type { LohaOptions, LokrOptions } from './options';

const { bool, clip, configObject, fieldError, layersToTransform, namesOrRegex, num, requiredNum } = configFields;

/** Fields that carry nothing for a forward pass on linear layers, or that we read below. */
const SHARED_FIELDS = [
  'peft_type',
  'task_type',
  'base_model_name_or_path',
  'revision',
  'inference_mode',
  'auto_mapping',
  'peft_version',
  'rank_pattern',
  'alpha_pattern',
  'r',
  'alpha',
  'rank_dropout',
  'module_dropout',
  // Changes only convolutions, which these backbones do not have.
  'use_effective_conv2d',
  'target_modules',
  'exclude_modules',
  'init_weights',
  'layers_to_transform',
  'layers_pattern',
  'modules_to_save',
  'deltatune',
];
const LOKR_FIELDS = ['decompose_both', 'decompose_factor', 'rank_dropout_scale'];

const isEmptyPattern = (v: unknown) =>
  v === null || v === undefined || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);

/** What LoHa and LoKr read alike from a PEFT `adapter_config.json`; errors name the field. */
function sharedOptions(raw: Record<string, unknown>, peftType: 'LOHA' | 'LOKR', known: readonly string[]) {
  const config = configObject(raw);
  if (config.peft_type !== peftType) {
    throw new DeltaTuneError(
      `adapter_config.json has peft_type ${JSON.stringify(config.peft_type)}, not ${peftType}`,
      'load it with the method for that peft_type',
    );
  }
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    if (!isEmptyPattern(config[key])) {
      throw fieldError(
        key,
        `is ${clip(JSON.stringify(config[key]))}: per-layer ranks and alphas are not supported by @deltatune/lycoris`,
        `save the adapter with one r and alpha for every layer ("${key}": {})`,
      );
    }
  }
  // PEFT always writes them, and a null would crash PEFT's own scaling (alpha / r): never a silent default.
  for (const key of ['alpha', 'decompose_factor']) {
    if (key in config && config[key] === null) throw fieldError(key, 'is null', `set "${key}" to the number the adapter was trained with`);
  }
  bool(config, 'use_effective_conv2d');
  const targets = namesOrRegex(config, 'target_modules');
  if (Array.isArray(targets) && targets.length === 0) {
    throw fieldError('target_modules', 'is an empty list: the adapter would change no module', 'list the modules it was trained on');
  }
  const exclude = namesOrRegex(config, 'exclude_modules');
  const warnings = Object.keys(config)
    .filter((k) => !known.includes(k))
    .map((k) => `adapter_config.json field "${k}" is not known to @deltatune/lycoris and was ignored`);
  if (config.modules_to_save) {
    warnings.push(
      `modules_to_save ${JSON.stringify(config.modules_to_save)} are task heads; the forward command applies only the ${peftType} tensors`,
    );
  }
  return {
    config,
    warnings,
    options: {
      r: requiredNum(config, 'r', 'positiveInteger'),
      alpha: num(config, 'alpha', 'finite', 8),
      rankDropout: num(config, 'rank_dropout', 'probability', 0),
      moduleDropout: num(config, 'module_dropout', 'probability', 0),
      // PEFT: a list is matched by suffix, a string is a regex matched against the whole name.
      targets: typeof targets === 'string' ? new RegExp(`^(?:${targets})$`) : targets,
      exclude: typeof exclude === 'string' ? new RegExp(`^(?:${exclude})$`) : exclude,
      layers: layersToTransform(config),
    },
  };
}

/** PEFT's `init_weights` as our `init`: only how a fresh adapter starts; loaded factors replace it. */
function initOf(config: Record<string, unknown>, allowLycoris: boolean): 'default' | 'random' | 'lycoris' {
  const v = config.init_weights;
  if (v === undefined || v === null || v === true) return 'default';
  if (v === false) return 'random';
  if (v === 'lycoris') return allowLycoris ? 'lycoris' : 'default'; // PEFT's LoHa tests it for truth only
  throw fieldError(
    'init_weights',
    `is ${clip(JSON.stringify(v))}, not ${allowLycoris ? 'true, false or "lycoris"' : 'true or false'}`,
    'set "init_weights": true',
  );
}

/** LoHa options from a PEFT `adapter_config.json` (peft_type LOHA). */
export function lohaOptionsFromPeft(raw: Record<string, unknown>): { options: Partial<LohaOptions>; warnings: string[] } {
  const { config, options, warnings } = sharedOptions(raw, 'LOHA', SHARED_FIELDS);
  return { options: { ...options, init: initOf(config, false) as LohaOptions['init'] }, warnings };
}

/** LoKr options from a PEFT `adapter_config.json` (peft_type LOKR), with the factor-shape settings. */
export function lokrOptionsFromPeft(raw: Record<string, unknown>): { options: Partial<LokrOptions>; warnings: string[] } {
  const { config, options, warnings } = sharedOptions(raw, 'LOKR', [...SHARED_FIELDS, ...LOKR_FIELDS]);
  return {
    options: {
      ...options,
      decomposeBoth: bool(config, 'decompose_both', false),
      decomposeFactor: num(config, 'decompose_factor', 'integer', -1),
      rankDropoutScale: bool(config, 'rank_dropout_scale', false),
      init: initOf(config, true),
    },
    warnings,
  };
}
