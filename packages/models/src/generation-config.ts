import { DeltaTuneError } from '@deltatune/core';
import type { GenerationDefaults } from './generation/options';

type Check = (v: unknown) => boolean;

const isInt: Check = (v) => typeof v === 'number' && Number.isInteger(v);
const isId: Check = (v) => isInt(v) && (v as number) >= 0;

/** Each mapped field: our name, the check, and what the error calls a valid value. */
const FIELDS: ReadonlyArray<readonly [string, keyof GenerationDefaults, Check, string]> = [
  ['do_sample', 'doSample', (v) => typeof v === 'boolean', 'true or false'],
  ['temperature', 'temperature', (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0, 'a number >= 0'],
  ['top_k', 'topK', (v) => isInt(v) && (v as number) >= 0, 'a whole number >= 0'],
  ['top_p', 'topP', (v) => typeof v === 'number' && v > 0 && v <= 1, 'a number in (0, 1]'],
  ['repetition_penalty', 'repetitionPenalty', (v) => typeof v === 'number' && Number.isFinite(v) && v > 0, 'a number > 0'],
  ['max_new_tokens', 'maxNewTokens', (v) => isInt(v) && (v as number) >= 1, 'a whole number >= 1'],
  ['pad_token_id', 'padId', isId, 'a token id (a whole number >= 0)'],
  ['bos_token_id', 'bosId', isId, 'a token id (a whole number >= 0)'],
];

function wrongType(source: string, name: string, value: unknown, expected: string): DeltaTuneError {
  return new DeltaTuneError(
    `${source}: "${name}" is ${JSON.stringify(value)}, not ${expected}`,
    `set "${name}" to ${expected} (as in the model repository's generation_config.json), or remove it`,
  );
}

/**
 * The defaults a transformers `generation_config.json` sets, in our names. Fields we do not use
 * (max_length, num_beams, transformers_version...) are ignored; `null`, which transformers writes
 * for unset fields, counts as absent. A value of the wrong type is refused rather than dropped, so
 * a typo never silently turns sampling into greedy decoding.
 */
export function generationDefaults(json: Record<string, unknown>, source = 'generation_config.json'): GenerationDefaults {
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new DeltaTuneError(`${source} is ${JSON.stringify(json)}, not a JSON object`, 'restore the file from the model repository');
  }
  const out: Record<string, unknown> = {};
  for (const [name, ours, check, expected] of FIELDS) {
    const v = json[name];
    if (v === undefined || v === null) continue;
    if (!check(v)) throw wrongType(source, name, v, expected);
    out[ours] = v;
  }
  const eos = json.eos_token_id;
  if (eos !== undefined && eos !== null) {
    // One id (most models) or several (Llama 3 and Qwen instruct models end on any of them).
    const ids = Array.isArray(eos) ? eos : [eos];
    if (ids.length === 0 || !ids.every(isId)) throw wrongType(source, 'eos_token_id', eos, 'a token id or a non-empty list of token ids');
    out.eosIds = ids as number[];
  }
  return out as GenerationDefaults;
}
