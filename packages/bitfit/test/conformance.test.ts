import { describe, expect, it } from 'vitest';
import { attach } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { rejects } from '../../../test-errors';
import { bitfit } from '@deltatune/bitfit';
import { describeConformance } from '../../../test-conformance';

describeConformance('BitFit', () => bitfit(), { identityAtInit: true });
describeConformance('BitFit, query and intermediate biases only', () => bitfit({ subset: 'query-intermediate' }), { identityAtInit: true });
describeConformance('BitFit (q/k/v biases of Qwen2)', () => bitfit(), { identityAtInit: true }, 'qwen2');

describe('BitFit on a bias-free Llama', () => {
  it('says plainly that there is nothing to train and what to use instead', () => {
    const model = loadHuggingFaceFolder(new URL('../../../fixtures/llm-reference/llama', import.meta.url).pathname);
    const e = rejects(() => attach(model, bitfit()), /bitfit: this llama backbone has no bias terms/);
    expect(e.fix).toMatch(/--method lora/);
    model.dispose();
  });
});
