import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DeltaTuneError, type Backbone, type Delta } from '@deltatune/core';
import type { GenerationDefaults, TextTokenizer } from '@deltatune/models';
import { checkTokenizerFits, loadBackbone, loadGenerationDefaults, loadTokenizer } from '@deltatune/models/node';
import { resolveModel } from './context';
import { loadDeltas } from './deltas';
import { mergeAll, type LmFlags } from './generation-flags';

/** A decoder ready to generate: its tokenizer (where the folder has one), deltas attached, generation_config read. */
export interface LmSession {
  readonly backbone: Backbone;
  readonly tokenizer?: TextTokenizer;
  readonly deltas: Delta[];
  readonly defaults: GenerationDefaults;
  readonly dir: string;
  dispose(): void;
}

export async function openLmSession(flags: LmFlags, needTokenizer: boolean): Promise<LmSession> {
  const model = flags.required('model', 'a Hugging Face model folder, or a hub id such as HuggingFaceTB/SmolLM2-135M');
  const dir = await resolveModel(model, flags.value('json'));
  const backbone = loadBackbone(dir);
  if (!backbone.vocabSize || backbone.architecture === 'use-lite' || ['bert', 'roberta'].includes(backbone.architecture)) {
    backbone.dispose();
    throw new DeltaTuneError(
      `${model} is a ${backbone.architecture} encoder, which has no language-model head to generate with`,
      'use a decoder: a Llama, Mistral, Qwen2, Qwen3 or GPT-2 folder',
    );
  }
  const hasTokenizer = existsSync(join(dir, 'tokenizer.json'));
  if (needTokenizer && !hasTokenizer) {
    backbone.dispose();
    throw new DeltaTuneError(
      `${dir} has no tokenizer.json, so text cannot be tokenized`,
      'give token ids with --input-ids 5,17,42, or add the repository’s tokenizer.json',
    );
  }
  const tokenizer = hasTokenizer ? loadTokenizer(dir) : undefined;
  if (tokenizer) checkTokenizerFits(tokenizer, backbone, dir);
  const deltas = loadDeltas(backbone, flags.value('delta'));
  if (flags.value('merge')) mergeAll(deltas);
  return {
    backbone,
    tokenizer,
    deltas,
    defaults: loadGenerationDefaults(dir),
    dir,
    dispose() {
      for (const d of deltas) d.detach();
      backbone.dispose();
    },
  };
}
