import * as tf from '@tensorflow/tfjs-core';
import { createRng, DeltaTuneError, type Backbone, type BackboneInputs, type BackboneOutputs } from '@deltatune/core';
import type { KeyValueCache } from './kv-cache';
import type { FinishReason, GeneratedRow, GenerateOptions } from './options';
import { checkSampling, nextToken } from './sampling';

/** A backbone that can decode incrementally (the Llama family); others are run on the whole row each step. */
export interface CachingLm extends Backbone {
  createCache(batchSize: number): KeyValueCache;
  forward(inputs: BackboneInputs, options?: { training?: boolean; cache?: KeyValueCache; lastPositionOnly?: boolean }): BackboneOutputs;
}

export function canCache(backbone: Backbone): backbone is CachingLm {
  return typeof (backbone as Partial<CachingLm>).createCache === 'function';
}

/**
 * Continues each prompt (token ids) with the backbone's language-model head and its attached
 * deltas. Prompts of different lengths share one batch, left-padded and masked, each row with the
 * positions it would have alone. With a cache (default where the backbone has one) the prompts run
 * once and each further step runs one position per row; without, each step reruns every row whole
 * (what the benchmark compares). Rows stop on an eos id, a stop string or `maxNewTokens`; the
 * batch stops when all have.
 */
export async function generate(backbone: Backbone, prompts: readonly (readonly number[])[], o: GenerateOptions): Promise<GeneratedRow[]> {
  checkPrompts(backbone, prompts, o);
  checkSampling(o);
  const useCache = (o.useCache ?? true) && canCache(backbone);
  const rng = createRng(o.seed ?? 0);
  const eos = new Set(o.eosIds ?? []);
  const n = prompts.length;
  const width = Math.max(...prompts.map((p) => p.length));
  // Left padding: every row's next token goes in the last column.
  let ids = prompts.map((p) => [...new Array<number>(width - p.length).fill(o.padId), ...p]);
  let mask = prompts.map((p) => [...new Array<number>(width - p.length).fill(0), ...p.map(() => 1)]);
  const generated: number[][] = prompts.map(() => []);
  const finish: (FinishReason | undefined)[] = prompts.map(() => undefined);
  const texts: (string | undefined)[] = prompts.map(() => undefined);
  const cache = useCache ? backbone.createCache(n) : undefined;
  try {
    // The first step feeds the prompts; with a cache the later ones feed only the last token.
    let feedIds = ids;
    let feedMask = mask;
    for (let step = 0; step < o.maxNewTokens && finish.some((f) => f === undefined); step++) {
      const logits = await lastLogits(backbone, feedIds, feedMask, cache);
      const vocab = logits.length / n;
      const chosen: number[] = [];
      for (let r = 0; r < n; r++) {
        if (finish[r] !== undefined) {
          chosen.push(o.padId); // a finished row is fed padding, masked out, until the others end
          continue;
        }
        const row = logits.subarray(r * vocab, (r + 1) * vocab);
        const id = nextToken(row, [...prompts[r], ...generated[r]], o, rng);
        chosen.push(id);
        generated[r].push(id);
        o.onToken?.(r, id);
        if (eos.has(id)) finish[r] = 'eos';
        else if (o.stopStrings?.length && o.decode) {
          const text = o.decode(generated[r]);
          const at = firstStop(text, o.stopStrings);
          if (at >= 0) {
            finish[r] = 'stop';
            texts[r] = text.slice(0, at);
          }
        }
      }
      const live = chosen.map((_, r) => (finish[r] === undefined || generated[r].length === step + 1 ? 1 : 0));
      ids = ids.map((row, r) => [...row, chosen[r]]);
      mask = mask.map((row, r) => [...row, live[r]]);
      feedIds = cache ? chosen.map((id) => [id]) : ids;
      feedMask = cache ? live.map((m) => [m]) : mask;
    }
  } finally {
    cache?.dispose();
  }
  return prompts.map((p, r) => ({
    promptIds: p,
    newIds: generated[r],
    finish: finish[r] ?? 'length',
    ...(o.decode ? { text: texts[r] ?? o.decode(generated[r]) } : {}),
  }));
}

/** `[rows * vocab]` logits at each row's last position (read asynchronously: WebGPU cannot read synchronously). */
async function lastLogits(backbone: Backbone, ids: number[][], mask: number[][], cache: KeyValueCache | undefined): Promise<Float32Array> {
  const inputs = { inputIds: tf.tensor2d(ids, undefined, 'int32'), attentionMask: tf.tensor2d(mask, undefined, 'int32') };
  try {
    const out = canCache(backbone) ? backbone.forward(inputs, { cache, lastPositionOnly: true }) : backbone.forward(inputs);
    const logits = out.logits;
    tf.dispose([out.lastHiddenState, out.pooled, out.embedding].filter((t): t is tf.Tensor => !!t && t !== logits));
    if (!logits)
      throw new DeltaTuneError(
        `the ${backbone.architecture} backbone has no language-model head`,
        'generate with a decoder (GPT-2, Llama, Qwen...)',
      );
    const [b, s, v] = logits.shape as number[];
    const last = tf.tidy(() => tf.reshape(tf.slice(logits, [0, s - 1, 0], [b, 1, v]), [b * v]));
    logits.dispose();
    const data = (await last.data()) as Float32Array;
    last.dispose();
    return data;
  } finally {
    tf.dispose([inputs.inputIds, inputs.attentionMask]);
  }
}

function firstStop(text: string, stops: readonly string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** Ids the model cannot read, an empty prompt or a row past the position table would fail deep inside tfjs. */
function checkPrompts(backbone: Backbone, prompts: readonly (readonly number[])[], o: GenerateOptions): void {
  if (prompts.length === 0) throw new DeltaTuneError('no prompt to continue', 'give at least one prompt');
  if (!(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 0))
    throw new DeltaTuneError(`max new tokens is ${o.maxNewTokens}`, 'give a whole number >= 0, e.g. 32');
  const vocab = backbone.vocabSize ?? Number.MAX_SAFE_INTEGER;
  prompts.forEach((p, r) => {
    if (p.length === 0) throw new DeltaTuneError(`prompt ${r} has no tokens`, 'give each prompt at least one token id');
    const bad = p.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (bad >= 0)
      throw new DeltaTuneError(
        `prompt ${r} token ${bad} is ${p[bad]}, outside this ${backbone.architecture} model's vocabulary (ids 0..${vocab - 1})`,
        "give ids from the model's tokenizer (or --prompt TEXT to tokenize for you)",
      );
  });
  const longest = Math.max(...prompts.map((p) => p.length)) + o.maxNewTokens;
  if (backbone.maxPositions !== undefined && longest > backbone.maxPositions)
    throw new DeltaTuneError(
      `a prompt of ${longest - o.maxNewTokens} tokens plus ${o.maxNewTokens} new ones exceeds this model's ${backbone.maxPositions} positions`,
      `lower --max-new-tokens to ${Math.max(0, backbone.maxPositions - (longest - o.maxNewTokens))} or shorten the prompt`,
    );
  if (!Number.isInteger(o.padId) || o.padId < 0 || o.padId >= vocab)
    throw new DeltaTuneError(`pad id ${o.padId} is outside the vocabulary`, "use the tokenizer's pad (or eos) id");
}
