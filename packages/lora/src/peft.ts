import { DeltaTuneError, type Backbone, type LinearSite } from '@deltatune/core';
import type { LoraOptions } from './options';

/** PEFT's tensor name for a module path: `base_model.model.<site>.<suffix>`. */
export function peftKey(site: string, suffix: string): string {
  return `base_model.model.${site}.${suffix}`;
}

/** An `adapter_config.json` that Python PEFT loads (`PeftModel.from_pretrained`). */
export function configToPeft(o: LoraOptions, backbone: Backbone, sites: readonly LinearSite[]): Record<string, unknown> {
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
    use_dora: false,
    lora_bias: false,
  };
}

/** Fields that carry nothing for inference or that we reproduce exactly; read and ignored. */
const IGNORED = new Set([
  'auto_mapping', 'base_model_name_or_path', 'inference_mode', 'init_lora_weights', 'revision', 'task_type',
  'peft_version', 'megatron_config', 'megatron_core', 'loftq_config', 'eva_config', 'corda_config', 'layers_pattern',
  'alora_invocation_tokens', 'arrow_config', 'ensure_weight_tying', 'kasa_config', 'lora_ga_config',
  'monteclora_config', 'qalora_group_size', 'velora_config', 'fan_in_fan_out', 'deltatune', 'peft_type',
  'r', 'lora_alpha', 'lora_dropout', 'use_rslora', 'target_modules', 'exclude_modules', 'layers_to_transform', 'bias',
  'modules_to_save',
]);

/** Fields that change what the adapter computes in ways we do not implement: an error when set. */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  use_dora: (v) => v === true,
  lora_bias: (v) => v === true,
  use_qalora: (v) => v === true,
  use_bdlora: (v) => v !== null && v !== undefined && v !== false,
  rank_pattern: (v) => !!v && Object.keys(v as object).length > 0,
  alpha_pattern: (v) => !!v && Object.keys(v as object).length > 0,
  layer_replication: (v) => v !== null && v !== undefined,
  target_parameters: (v) => v !== null && v !== undefined,
  trainable_token_indices: (v) => v !== null && v !== undefined,
};

/**
 * LoRA options from a PEFT `adapter_config.json`. Settings we cannot reproduce are an error;
 * unknown fields come back as warnings (the CLI prints them), never silently change outputs.
 */
export function optionsFromPeft(config: Record<string, unknown>): { options: Partial<LoraOptions>; warnings: string[] } {
  if (config.peft_type !== 'LORA') {
    throw new DeltaTuneError(`adapter_config.json has peft_type ${JSON.stringify(config.peft_type)}, not LORA`, 'load it with the method for that peft_type');
  }
  for (const [key, isSet] of Object.entries(UNSUPPORTED)) {
    if (key in config && isSet(config[key])) {
      throw new DeltaTuneError(
        `PEFT LoRA option ${key}=${JSON.stringify(config[key])} is not supported by @deltatune/lora`,
        `save the adapter without ${key} (or merge it in Python first)`,
      );
    }
  }
  const warnings = Object.keys(config)
    .filter((k) => !IGNORED.has(k) && !(k in UNSUPPORTED))
    .map((k) => `adapter_config.json field "${k}" is not known to @deltatune/lora and was ignored`);
  if (config.modules_to_save) {
    warnings.push(`modules_to_save ${JSON.stringify(config.modules_to_save)} are task heads; the forward command applies only the LoRA tensors`);
  }
  const targets = config.target_modules;
  const layers = config.layers_to_transform;
  return {
    options: {
      r: config.r as number,
      alpha: (config.lora_alpha as number) ?? 8,
      dropout: (config.lora_dropout as number) ?? 0,
      rsLoRA: (config.use_rslora as boolean) ?? false,
      bias: ((config.bias as string) ?? 'none') as LoraOptions['bias'],
      // PEFT: a list is matched by suffix, a string is a regex matched against the whole name.
      targets: typeof targets === 'string' ? new RegExp(`^(?:${targets})$`) : (targets as string[] | undefined),
      exclude:
        typeof config.exclude_modules === 'string'
          ? new RegExp(`^(?:${config.exclude_modules})$`)
          : ((config.exclude_modules as string[] | null) ?? undefined),
      layers: layers === null || layers === undefined ? undefined : Array.isArray(layers) ? layers : [layers as number],
    },
    warnings,
  };
}
