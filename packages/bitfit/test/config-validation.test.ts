import { describe, expect, it } from 'vitest';
import { rejects } from '../../../test-errors';
import { attach } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { bitfit, bitfitMethod } from '@deltatune/bitfit';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;

function savedConfig(): Record<string, unknown> {
  const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
  const config = attach(model, bitfit({ subset: 'query-intermediate' })).save().config;
  model.dispose();
  return { ...config, deltatune: { method: 'bitfit', version: '0.1.0', name: 'default' } };
}

describe('bitfit config validation', () => {
  const good = savedConfig();
  const withField = (key: string, value: unknown) => ({ ...good, [key]: value });

  it('a saved config loads back', () => {
    expect(bitfitMethod.fromConfig(good).options).toMatchObject({ subset: 'query-intermediate', layerNorm: true });
  });

  it.each([null, [], 'bitfit'])('refuses a config that is %j', (config) => {
    rejects(() => bitfitMethod.fromConfig(config as never), /^adapter_config\.json holds .*, not a JSON object/);
  });

  it.each([
    ['subset', 'most', /"subset" is the string "most", not one of "all", "query-intermediate"/],
    ['subset', 'constructor', /"subset" is the string "constructor", not one of/],
    ['layer_norm', 'false', /"layer_norm" is the string "false", not true or false/],
    ['layer_norm', 0, /"layer_norm" is number 0, not true or false/],
    ['biases', undefined, /"biases" is missing/],
    ['biases', null, /"biases" is missing/],
    ['biases', [], /"biases" is an empty list/],
    ['biases', 'encoder.layer.0.attention.self.query.bias', /"biases" is the string .*, not a list of names/],
    ['biases', [1], /"biases" is the array \[1\], not a list of names/],
    ['biases', ['encoder.layer.0.attention.self.query.weight'], /"biases" names "encoder.layer.0.attention.self.query.weight", not a bias/],
  ])('refuses %s = %j', (key, value, message) => {
    rejects(() => bitfitMethod.fromConfig(withField(key, value)), new RegExp(`^adapter_config\\.json: ${message.source}`));
  });

  it.each([
    ['subset', 'most', /bitfit option subset=most is not one of all, query-intermediate/],
    ['layerNorm', 'no', /bitfit option layerNorm=no is not a boolean/],
    ['seed', 'NaN', /bitfit option seed=NaN is not an integer/],
    ['layers', '[-0.5]', /bitfit option layers=\[-0\.5\] is not layer indices/],
  ])('refuses --opt %s=%s', (key, value, message) => {
    rejects(() => bitfitMethod.options.parse({ [key]: value }), message);
  });

  it('parses good --opt values', () => {
    expect(bitfitMethod.options.parse({ subset: 'all', layerNorm: 'false', layers: '[0]' })).toEqual({
      subset: 'all',
      layerNorm: false,
      layers: [0],
    });
  });
});
