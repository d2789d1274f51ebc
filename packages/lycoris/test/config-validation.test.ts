import { describe, expect, it, vi } from 'vitest';
import { rejects } from '../../../test-errors';
import { attach } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { loha, lohaMethod, lokr, lokrMethod } from '@deltatune/lycoris';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;

function savedConfig(method: 'loha' | 'lokr'): Record<string, unknown> {
  const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
  const config = attach(model, method === 'loha' ? loha({ r: 4 }) : lokr({ r: 2, decomposeBoth: true, init: 'lycoris' })).save().config;
  model.dispose();
  return config;
}

describe.each([
  ['loha', lohaMethod, 'LOHA'],
  ['lokr', lokrMethod, 'LOKR'],
] as const)('%s config validation', (name, method, peftType) => {
  const good = savedConfig(name);
  const withField = (key: string, value: unknown) => ({ ...good, [key]: value });

  it('a saved config loads back with its options', () => {
    const spec = method.fromConfig(good);
    expect(spec.method).toBe(name);
    if (name === 'lokr') expect(spec.options).toMatchObject({ r: 2, decomposeBoth: true, init: 'lycoris', decomposeFactor: -1 });
    else expect(spec.options).toMatchObject({ r: 4, alpha: 8, init: 'default' });
  });

  it.each([null, [], name])('refuses a config that is %j', (config) => {
    rejects(() => method.fromConfig(config as never), /^adapter_config\.json holds .*, not a JSON object/);
  });

  it('refuses another peft_type, naming both', () => {
    rejects(() => method.fromConfig(withField('peft_type', 'LORA')), new RegExp(`peft_type "LORA", not ${peftType}`));
  });

  it.each([
    ['r', undefined, /"r" is missing/],
    ['r', 0, /"r" is 0, not a positive integer/],
    ['alpha', null, /"alpha" is null/],
    ['alpha', 'eight', /"alpha" is the string "eight"; it must be a finite number/],
    ['rank_dropout', 1.5, /"rank_dropout" is 1.5, not a number in \[0, 1\)/],
    ['module_dropout', -0.1, /"module_dropout" is -0.1, not a number in \[0, 1\)/],
    ['rank_pattern', { query: 8 }, /"rank_pattern" is \{"query":8\}: per-layer ranks and alphas are not supported/],
    ['alpha_pattern', { query: 8 }, /"alpha_pattern" is \{"query":8\}: per-layer ranks and alphas are not supported/],
    ['target_modules', [], /"target_modules" is an empty list/],
    ['target_modules', '(', /"target_modules" is the string "\(", which is not a valid regular expression/],
    ['init_weights', 'gaussian', /"init_weights" is "gaussian", not true/],
    ['layers_to_transform', [-1], /"layers_to_transform" is the array \[-1\], not a layer index/],
    ['use_effective_conv2d', 'yes', /"use_effective_conv2d" is the string "yes", not true or false/],
  ])('refuses %s = %j', (key, value, message) => {
    rejects(() => method.fromConfig(withField(key, value)), new RegExp(`^adapter_config\\.json: ${message.source}`));
  });

  it('warns about a field it does not know, and loads', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    method.fromConfig(withField('use_fancy_mode', true));
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/field "use_fancy_mode" is not known to @deltatune\/lycoris/));
    warn.mockRestore();
  });

  it('refuses bad --opt values with the option named', () => {
    rejects(() => method.options.parse({ r: '0' }), new RegExp(`${name} option r=0 is not a positive integer`));
    rejects(() => method.options.parse({ init: 'gaussian' }), new RegExp(`${name} option init=gaussian is not one of`));
    rejects(() => method.options.parse({ moduleDropout: '1' }), new RegExp(`${name} option moduleDropout=1 is not a number in \\[0, 1\\)`));
  });
});

describe('lokr-only fields', () => {
  const good = savedConfig('lokr');
  it.each([
    ['decompose_both', 'true', /"decompose_both" is the string "true", not true or false/],
    ['decompose_factor', 2.5, /"decompose_factor" is 2.5, not an integer/],
    ['rank_dropout_scale', 1, /"rank_dropout_scale" is number 1, not true or false/],
  ])('refuses %s = %j', (key, value, message) => {
    rejects(() => lokrMethod.fromConfig({ ...good, [key]: value }), new RegExp(`^adapter_config\\.json: ${message.source}`));
  });
  it('reads init_weights "lycoris"; LoHa, which tests it for truth only as PEFT does, reads it as the default init', () => {
    expect(lokrMethod.fromConfig({ ...good, init_weights: 'lycoris' }).options).toMatchObject({ init: 'lycoris' });
    expect(lohaMethod.fromConfig({ ...savedConfig('loha'), init_weights: 'lycoris' }).options).toMatchObject({ init: 'default' });
  });
});
