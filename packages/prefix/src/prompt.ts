import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';
import {
  createRng,
  defineDelta,
  DeltaTuneError,
  normal,
  ownedVariable,
  selectSites,
  type Backbone,
  type Delta,
  type DeltaSpec,
  type EmbeddingsSite,
} from '@deltatune/core';

import { PREFIX_CORE_RANGE as CORE_RANGE, PREFIX_VERSION } from './version';
import { PROMPT_DEFAULTS, PROMPT_INITS, PROMPT_OPTIONS, type PromptTuningOptions } from './options';

/** Prompt tuning ships in @deltatune/prefix, so it carries that package's version. */
export const PROMPT_VERSION = PREFIX_VERSION;
export { CORE_RANGE };

export { PROMPT_DEFAULTS, PROMPT_INITS, type PromptTuningOptions };

/**
 * Prompt tuning (Lester et al. 2021): `virtualTokens` learned embeddings prepended at the
 * embeddings site; the attention mask gets ones in front, and positions count them (as PEFT does
 * by passing `inputs_embeds`). Outputs are `virtualTokens` positions longer: `prependedPositions`
 * says how many, and BERT's pooler reads the first virtual token.
 */
export function promptTuning(options: Partial<PromptTuningOptions> = {}): DeltaSpec<PromptTuningOptions> {
  const o = PROMPT_OPTIONS.resolve(options);
  if (o.init === 'text' && !o.initTokenIds?.length)
    throw new DeltaTuneError(
      'prompt: init "text" needs initTokenIds (or --opt initText="..." on the CLI)',
      'give the text to start from, or use init=vocab',
    );
  return {
    method: 'prompt',
    version: PROMPT_VERSION,
    coreRange: CORE_RANGE,
    options: o,
    attach: (backbone, name) => attachPrompt(backbone, name, o),
  };
}

function initialPrompt(site: EmbeddingsSite, o: PromptTuningOptions): Tensor {
  const [vocab] = site.table.shape as number[];
  const rng = createRng(o.seed);
  if (o.init === 'random') {
    // Scaled on the device: reading the table's spread back would need a synchronous GPU read.
    return tf.tidy(() => tf.mul(normal(rng, [o.virtualTokens, site.hidden], 1), tf.sqrt(tf.moments(site.table).variance)));
  }
  const outside = o.init === 'text' ? o.initTokenIds!.find((id) => id >= vocab) : undefined;
  // tf.gather reads past the table as zeros on some backends: a silent all-zero prompt.
  if (outside !== undefined)
    throw new DeltaTuneError(
      `prompt: initTokenIds holds ${outside}, but the vocabulary has ${vocab} tokens`,
      "use ids from this backbone's tokenizer",
    );
  const ids =
    o.init === 'text'
      ? Array.from({ length: o.virtualTokens }, (_, i) => o.initTokenIds![i % o.initTokenIds!.length])
      : Array.from({ length: o.virtualTokens }, () => Math.floor(rng.next() * vocab));
  return tf.gather(site.table, tf.tensor1d(ids, 'int32'));
}

function attachPrompt(backbone: Backbone, name: string, o: PromptTuningOptions): Delta {
  const [site] = selectSites(backbone.sites, 'embeddings', {});
  const prompt = ownedVariable(initialPrompt(site, o));
  return defineDelta({
    name,
    method: 'prompt',
    version: PROMPT_VERSION,
    backbone,
    variables: new Map([['prompt_embeddings', prompt]]),
    sites: [site.name],
    register: () => [
      backbone.hooks.add('embeddings', site.name, (embeds) => tf.tile(tf.expandDims(prompt, 0), [embeds.shape[0] as number, 1, 1]), {
        owner: name,
      }),
    ],
    config: () => ({
      peft_type: 'PROMPT_TUNING',
      task_type: null,
      inference_mode: true,
      num_virtual_tokens: o.virtualTokens,
      token_dim: site.hidden,
      num_transformer_submodules: 1,
      prompt_tuning_init: o.init === 'text' ? 'TEXT' : 'RANDOM',
      prompt_tuning_init_text: o.initText ?? null,
      tokenizer_name_or_path: null,
    }),
  });
}

/** `virtualTokens * hidden`. */
export function promptParameterCount(backbone: Backbone, options: Partial<PromptTuningOptions> = {}): number {
  const [site] = selectSites(backbone.sites, 'embeddings', {});
  return PROMPT_OPTIONS.resolve(options).virtualTokens * site.hidden;
}
