import { beforeAll, describe, expect, it } from 'vitest';
import { registerMethod } from '@deltatune/core';
import { lohaMethod, lokrMethod } from '@deltatune/lycoris';
import { checkCase, methodReference } from '../../../test-method-reference';

beforeAll(() => {
  registerMethod(lohaMethod);
  registerMethod(lokrMethod);
});

// fixtures/method-reference: PEFT-layout folders and float64 outputs from a plain-PyTorch
// reimplementation of PEFT's LoHa / LoKr layers (generate.py), whose BERT forward matches transformers.
describe.each([
  ['bert-loha', 'loha'],
  ['bert-lokr', 'lokr'],
  ['bert-lokr-lowrank-w2', 'lokr'],
  ['bert-lokr-decompose-both', 'lokr'],
  ['bert-lokr-factor-2', 'lokr'],
])('%s (PEFT folder, plain-PyTorch reference)', (name, method) => {
  it('loads as the method it names, on query, value and both feed-forward projections, in every layer', () => {
    const r = checkCase(name);
    expect(r.method).toBe(method);
    expect(r.sites).toHaveLength(10);
    // The case is not trivially the base model: the reference moved the output.
    expect(methodReference.cases[name].max_abs_change_from_base).toBeGreaterThan(0.1);
    // Unmerged, merged, and unmerged again, within 1e-5 of the reference.
    expect(r.unmerged).toBeLessThan(1e-5);
    expect(r.merged).toBeLessThan(1e-5);
    expect(r.unmergedAgain).toBeLessThan(1e-5);
    // Every factor's gradient of sum(h * R), against PyTorch autograd, relative to its largest entry.
    expect(r.gradient).toBeLessThan(1e-5);
  });
});
