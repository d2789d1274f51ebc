import type { Backbone } from '@deltatune/core';
import type { TextTokenizer } from '@deltatune/models';
import { isSftExample, sftSamples, type Dataset, type SftExample, type SftSample } from '@deltatune/train';

/** Beside metrics.json: one JSON line per test example, its prompt, reference, and generations before and after training. */
export const SAMPLES_FILE = 'samples.jsonl';

/** How many test examples are continued, and how far (greedy). */
const SAMPLES = 4;
const MAX_NEW_TOKENS = 32;

/** Greedy generations for the first test examples of an sft run, with the model as it is now. */
export async function testSamples(
  backbone: Backbone,
  tokenizer: TextTokenizer,
  dataset: Dataset<unknown>,
  maxLength: number,
): Promise<SftSample[]> {
  const examples = dataset.test.filter(isSftExample) as SftExample[];
  return sftSamples(backbone, tokenizer, examples, { count: SAMPLES, maxNewTokens: MAX_NEW_TOKENS, maxLength });
}

/** samples.jsonl's text: per example its prompt, the reference, the greedy reply after training (`generation`) and before. */
export function sampleLines(before: readonly SftSample[], after: readonly SftSample[]): string {
  return after
    .map((a, i) =>
      JSON.stringify({
        prompt: a.prompt,
        reference: a.reference,
        generation: a.generation,
        finish: a.finish,
        before: before[i]?.generation,
      }),
    )
    .map((l) => l + '\n')
    .join('');
}
