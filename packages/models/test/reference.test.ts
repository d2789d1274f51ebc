import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { FIXTURES, maxAbsDiff, reference } from './fixtures';

describe('BERT and GPT-2 against PyTorch (transformers 5.17)', () => {
  it('BertModel: last_hidden_state and pooler_output within 1e-4', () => {
    const ref = reference('bert');
    const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const out = tf.tidy(() =>
      model.forward({
        inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
        tokenTypeIds: tf.tensor2d(ref.token_type_ids, undefined, 'int32'),
      }),
    );
    expect(maxAbsDiff(out.lastHiddenState!, ref.base.last_hidden_state)).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.pooled, ref.base.pooler_output)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('GPT2LMHeadModel: logits within 1e-4, padded row included', () => {
    const ref = reference('gpt2');
    const model = loadHuggingFaceFolder(`${FIXTURES}gpt2`);
    const out = tf.tidy(() =>
      model.forward({
        inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
      }),
    );
    expect(maxAbsDiff(out.logits!, ref.base.logits)).toBeLessThan(1e-4);
    model.dispose();
  });
});
