import { beforeAll, describe, expect, it } from 'vitest';
import { registerMethod } from '@deltatune/core';
import { doraMethod, loraMethod, veraMethod } from '@deltatune/lora';
import { checkCase, methodReference } from '../../../test-method-reference';

beforeAll(() => {
  registerMethod(loraMethod);
  registerMethod(doraMethod);
  registerMethod(veraMethod);
});

// fixtures/method-reference: PEFT-layout folders and float64 outputs from a plain-PyTorch
// reimplementation of PEFT's DoRA / VeRA layers (generate.py), whose BERT forward matches transformers.
describe.each([
  // A PEFT LoRA folder with use_dora: true loads as DoRA through the lora method.
  ['bert-dora', 'dora'],
  ['bert-vera', 'vera'],
])('%s (PEFT folder, plain-PyTorch reference)', (name, method) => {
  it('matches unmerged, merged and unmerged again within 1e-5, and its gradients (norm detached for DoRA)', () => {
    const r = checkCase(name);
    expect(r.method).toBe(method);
    expect(r.sites).toHaveLength(10);
    expect(methodReference.cases[name].max_abs_change_from_base).toBeGreaterThan(0.05);
    expect(r.unmerged).toBeLessThan(1e-5);
    expect(r.merged).toBeLessThan(1e-5);
    expect(r.unmergedAgain).toBeLessThan(1e-5);
    expect(r.gradient).toBeLessThan(1e-5);
  });
});
