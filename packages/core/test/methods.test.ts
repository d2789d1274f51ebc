import { describe, expect, it } from 'vitest';
import { defineOptions, getMethod, registerMethod, unregisterMethod, type DeltaMethod } from '@deltatune/core';
import { satisfies } from '../src/semver';

const fake = (version: string, coreRange = '^0.1.0'): DeltaMethod => ({
  name: 'fake',
  version,
  coreRange,
  packageName: 'deltatune-fake',
  description: '',
  create: () => ({}) as never,
  options: defineOptions('fake', {}),
  fromConfig: () => ({}) as never,
});

describe('method registry', () => {
  it('is one per process, shared through a global symbol', () => {
    registerMethod(fake('1.0.0'));
    const registry = (globalThis as any)[Symbol.for('@deltatune/core/method-registry')] as Map<string, DeltaMethod>;
    expect(registry.get('fake')?.version).toBe('1.0.0');
    registerMethod(fake('1.0.0')); // a duplicate install of the same version is fine
    expect(() => registerMethod(fake('2.0.0'))).toThrow(/registered twice, by deltatune-fake@1.0.0 and deltatune-fake@2.0.0/);
    unregisterMethod('fake');
  });

  it('refuses a method built for another core', () => {
    expect(() => registerMethod(fake('1.0.0', '^1.0.0'))).toThrow(/built for @deltatune\/core \^1.0.0, but core 0.1.0 is installed/);
  });

  it('an unknown method name says how to get it, without naming a package that does not exist', () => {
    expect(() => getMethod('adaptr')).toThrow(/no delta method named "adaptr"[\s\S]*fix: .*--plugin <package or folder>/);
    expect(() => getMethod('adaptr')).not.toThrow(/npm install @deltatune\/adaptr/);
  });

  it('semver ranges', () => {
    expect(satisfies('0.1.5', '^0.1.0')).toBe(true);
    expect(satisfies('0.2.0', '^0.1.0')).toBe(false);
    expect(satisfies('1.4.0', '^1.2.0 || ^2.0.0')).toBe(true);
    expect(satisfies('1.2.9', '~1.2.0')).toBe(true);
    expect(satisfies('3.0.0', '>=2.1.0')).toBe(true);
  });
});
