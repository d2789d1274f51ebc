// Runs @deltatune/core/testing's conformance suite on a method, on a tiny random BERT (every site
// kind: linear, sublayer, attention, embeddings, norm), as each method package's own test does.
import * as tf from '@tensorflow/tfjs-core';
import { describe, it } from 'vitest';
import type { DeltaSpec } from '@deltatune/core';
import { conformanceChecks, type ConformanceSetup } from '@deltatune/core/testing';
import { randomBert } from '@deltatune/models';
import { loadHuggingFaceFolder } from '@deltatune/models/node';

const LLAMA = new URL('./fixtures/llm-reference/', import.meta.url).pathname;

const TINY_BERT = {
  vocabSize: 40,
  hiddenSize: 16,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 32,
  maxPositions: 32,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: 'gelu',
  padTokenId: 0,
};

export function describeConformance(
  label: string,
  spec: () => DeltaSpec<any>,
  claims: Pick<ConformanceSetup, 'identityAtInit'> & Partial<ConformanceSetup>,
  /** `bert`: a tiny random BERT; `llama`, `qwen3`: the llm-reference fixtures (grouped-query attention, RoPE, RMSNorm). */
  on: 'bert' | 'llama' | 'qwen2' | 'qwen3' = 'bert',
): void {
  describe(`${label} on ${on} keeps the delta-method contract (@deltatune/core/testing)`, () => {
    const checks = conformanceChecks({
      spec,
      backbone: () => (on === 'bert' ? randomBert(TINY_BERT, 7) : loadHuggingFaceFolder(`${LLAMA}${on}`)),
      inputs: () => ({
        inputIds: tf.tensor2d(
          [
            [2, 9, 14, 27, 3],
            [2, 5, 31, 3, 0],
          ],
          undefined,
          'int32',
        ),
        attentionMask: tf.tensor2d(
          [
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 0],
          ],
          undefined,
          'int32',
        ),
      }),
      ...claims,
    });
    for (const check of checks) it(check.name, check.run);
  });
}
