import { DeltaTuneError, type Backbone, type LinearSite, configFields } from '@deltatune/core';
import type { LoraOptions } from './options';

const { bool, clip, configObject, fieldError, layersToTransform, namesOrRegex, num, oneOf, requiredNum } = configFields;

/** PEFT's tensor name for a module path: `base_model.model.<site>.<suffix>`. */
export function peftKey(site: string, suffix: string): string {
  return `base_model.model.${site}.${suffix}`;
}

/** An `adapter_config.json` that Python PEFT loads (`PeftModel.from_pretrained`). */
export function configToPeft(o: LoraOptions, backbone: Backbone, sites: readonly LinearSite[], dora = false): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: null,
    base_model_name_or_path: null,
    inference_mode: true,
    r: o.r,
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    use_rslora: o.rsLoRA,
    // Full module paths: PEFT matches each as a suffix, so exactly these modules get LoRA.
    target_modules: sites.map((s) => s.name),
    exclude_modules: null,
    layers_to_transform: null,
    bias: o.bias,
    // GPT-2's Conv1D stores weights [in, out]; PEFT needs to know (A and B keep their layout).
    fan_in_fan_out: backbone.architecture === 'gpt2',
    init_lora_weights: true,
    modules_to_save: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_dora: dora,
    lora_bias: false,
  };
}

/** Fields that carry nothing for inference or that we reproduce exactly; read and ignored. */
const IGNORED = new Set([
  'auto_mapping',
  'base_model_name_or_path',
  'inference_mode',
  'init_lora_weights',
  'revision',
  'task_type',
  'peft_version',
  'megatron_config',
  'megatron_core',
  'loftq_config',
  'eva_config',
  'corda_config',
  'layers_pattern',
  'alora_invocation_tokens',
  'arrow_config',
  'ensure_weight_tying',
  'kasa_config',
  'lora_ga_config',
  'monteclora_config',
  'qalora_group_size',
  'velora_config',
  'fan_in_fan_out',
  'deltatune',
  'peft_type',
  'r',
  'lora_alpha',
  'lora_dropout',
  'use_rslora',
  'target_modules',
  'exclude_modules',
  'layers_to_transform',
  'bias',
  'modules_to_save',
]);

/** Fields that change what the adapter computes in ways we do not implement: an error when set. */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  use_dora: (v) => v === true,
  lora_bias: (v) => v === true,
  use_qalora: (v) => v === true,
  use_bdlora: (v) => v !== null && v !== undefined && v !== false,
  rank_pattern: (v) => v !== null && v !== undefined && !(isObject(v) && Object.keys(v).length === 0),
  alpha_pattern: (v) => v !== null && v !== undefined && !(isObject(v) && Object.keys(v).length === 0),
  layer_replication: (v) => v !== null && v !== undefined,
  target_parameters: (v) => v !== null && v !== undefined,
  trainable_token_indices: (v) => v !== null && v !== undefined,
};

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

const BIAS = ['none', 'all', 'lora_only'] as const;

/**
 * LoRA options from a PEFT `adapter_config.json`. Settings we cannot reproduce, and values of the
 * wrong type or range, are an error naming the field; unknown fields come back as warnings (the CLI
 * prints them), never silently change outputs.
 */
export function optionsFromPeft(
  raw: Record<string, unknown>,
  { dora = false }: { dora?: boolean } = {},
): { options: Partial<LoraOptions>; warnings: string[] } {
  const config = configObject(raw);
  if (config.peft_type !== 'LORA') {
    throw new DeltaTuneError(
      `adapter_config.json has peft_type ${JSON.stringify(config.peft_type)}, not LORA`,
      'load it with the method for that peft_type',
    );
  }
  for (const [key, isSet] of Object.entries(UNSUPPORTED)) {
    if (dora && key === 'use_dora') continue;
    if (key in config && isSet(config[key])) {
      if (key === 'use_dora') {
        throw new DeltaTuneError(
          'adapter_config.json is a DoRA adapter (use_dora: true), not plain LoRA',
          'load it with dora() / --method dora (a PEFT folder loads as DoRA by itself)',
        );
      }
      throw new DeltaTuneError(
        `adapter_config.json: PEFT LoRA option ${key}=${clip(JSON.stringify(config[key]))} is not supported by @deltatune/lora`,
        `save the adapter without ${key} (or merge it in Python first)`,
      );
    }
  }
  // The switches above: a string "true" must not read as off.
  for (const key of ['use_dora', 'lora_bias', 'use_qalora']) bool(config, key);
  const warnings = Object.keys(config)
    .filter((k) => !IGNORED.has(k) && !(k in UNSUPPORTED))
    .map((k) => `adapter_config.json field "${k}" is not known to @deltatune/lora and was ignored`);
  if (config.modules_to_save) {
    warnings.push(
      `modules_to_save ${JSON.stringify(config.modules_to_save)} are task heads; the forward command applies only the LoRA tensors`,
    );
  }
  // Only merging reads it (the A/B layout does not change), and PEFT corrects a wrong value with a
  // warning; the method compares it with the backbone at attach.
  bool(config, 'fan_in_fan_out');
  if (dora && config.use_dora !== true) {
    throw new DeltaTuneError(
      'adapter_config.json has no "use_dora": true: it is a plain LoRA adapter, not DoRA',
      'load it with --method lora (or as a PEFT folder, which reads use_dora itself)',
    );
  }
  const targets = namesOrRegex(config, 'target_modules');
  if (Array.isArray(targets) && targets.length === 0) {
    throw fieldError(
      'target_modules',
      'is an empty list: the adapter would change no module',
      'list the modules it was trained on, e.g. ["query", "value"]',
    );
  }
  const exclude = namesOrRegex(config, 'exclude_modules');
  return {
    options: {
      r: requiredNum(config, 'r', 'positiveInteger'),
      // PEFT takes any float (0 switches the update off, a negative one flips it); only NaN/Infinity cannot compute.
      alpha: num(config, 'lora_alpha', 'finite', 8),
      dropout: num(config, 'lora_dropout', 'probability', 0),
      rsLoRA: bool(config, 'use_rslora', false),
      bias: oneOf(config, 'bias', BIAS, 'none'),
      // PEFT: a list is matched by suffix, a string is a regex matched against the whole name.
      targets: typeof targets === 'string' ? new RegExp(`^(?:${targets})$`) : targets,
      exclude: typeof exclude === 'string' ? new RegExp(`^(?:${exclude})$`) : exclude,
      layers: layersToTransform(config),
    },
    warnings,
  };
}
