import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { setFusedKernels, useFused, FUSED_KERNELS } from '@deltatune/core';
import { selectBackend } from '@deltatune/backends';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { maxAbsDiffAsync, probeWebgpu } from '../../../test-webgpu';
import { FIXTURES, reference } from './fixtures';

/**
 * The backbones against PyTorch's numbers: on wasm (plain tfjs ops, the CPU default), and through
 * deltatune's fused kernels (layer norm, FUSED_KERNELS.gelu erf and tanh, masked and causal attention) on the cpu
 * backend (their JS twins) and on webgpu (the WGSL kernels) where this machine has an adapter.
 */
const webgpuMissing = await probeWebgpu();
const backends = ['wasm', 'cpu', ...(webgpuMissing ? [] : ['webgpu'])] as const;

afterAll(() => selectBackend('wasm'));

describe.each(backends)('BERT and GPT-2 on %s against PyTorch (transformers 5.17)', (backend) => {
  it('BertModel: last_hidden_state and pooler_output within 1e-4', async () => {
    await selectBackend(backend);
    setFusedKernels(true);
    // Fused kernels exist for cpu and webgpu, not for wasm.
    expect([FUSED_KERNELS.layerNorm, FUSED_KERNELS.gelu, FUSED_KERNELS.attentionSoftmax].every(useFused)).toBe(backend !== 'wasm');
    const ref = reference('bert');
    const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    const out = tf.tidy(() =>
      model.forward({
        inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
        tokenTypeIds: tf.tensor2d(ref.token_type_ids, undefined, 'int32'),
      }),
    );
    const [hidden, pooled] = [
      await maxAbsDiffAsync(out.lastHiddenState!, ref.base.last_hidden_state),
      await maxAbsDiffAsync(out.pooled, ref.base.pooler_output),
    ];
    console.log(`${backend} BERT: max |diff| hidden ${hidden.toExponential(2)}, pooled ${pooled.toExponential(2)}`);
    expect(hidden).toBeLessThan(1e-4);
    expect(pooled).toBeLessThan(1e-4);
    tf.dispose(Object.values(out).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
    model.dispose();
  });

  it('GPT2LMHeadModel: logits within 1e-4, padded row included', async () => {
    await selectBackend(backend);
    const ref = reference('gpt2');
    const model = loadHuggingFaceFolder(`${FIXTURES}gpt2`);
    const out = tf.tidy(() =>
      model.forward({
        inputIds: tf.tensor2d(ref.input_ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(ref.attention_mask, undefined, 'int32'),
      }),
    );
    const diff = await maxAbsDiffAsync(out.logits!, ref.base.logits);
    console.log(`${backend} GPT-2: max |diff| logits ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    tf.dispose(Object.values(out).filter((t): t is tf.Tensor => t instanceof tf.Tensor));
    model.dispose();
  });
});
