// Test helper shared by the packages' bad-input tests: the error a call throws, checked to be
// deltatune's own (never a TypeError from deep inside), to match `message`, and to carry a fix.
import { expect } from 'vitest';
import { DeltaTuneError } from '@deltatune/core';

export function rejects(run: () => unknown, message: RegExp): DeltaTuneError {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').toBeInstanceOf(DeltaTuneError);
  expect((caught as Error).message).toMatch(message);
  expect((caught as DeltaTuneError).fix).toBeTruthy();
  return caught as DeltaTuneError;
}
