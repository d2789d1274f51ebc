import { describe, expect, it } from 'vitest';
import { rejects } from '../../../test-errors';
import { attach } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { adapter, adapterMethod } from '@deltatune/adapter';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;

/** The config a saved BERT adapter holds (what adapter_config.json gets, less the deltatune block). */
function savedConfig(): Record<string, unknown> {
  const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
  const delta = attach(model, adapter({ placement: 'pfeiffer', reductionFactor: 4, nonLinearity: 'gelu' }));
  const config = delta.save().config;
  model.dispose();
  return { ...config, deltatune: { method: 'adapter', version: '0.1.0', name: 'default' } };
}

describe('adapter config validation', () => {
  const good = savedConfig();
  const withField = (key: string, value: unknown) => ({ ...good, [key]: value });

  it('a saved config loads back to the same options', () => {
    const spec = adapterMethod.fromConfig(good);
    expect(spec.options).toMatchObject({ placement: 'pfeiffer', reductionFactor: 4, nonLinearity: 'gelu', positions: ['feedforward'] });
  });

  it.each([null, [], 7])('refuses a config that is %j', (config) => {
    rejects(() => adapterMethod.fromConfig(config as never), /^adapter_config\.json holds .*, not a JSON object/);
  });

  it.each([
    ['reduction_factor', '16', /"reduction_factor" is the string "16"; it must be a number above 0/],
    ['reduction_factor', 0, /"reduction_factor" is 0, not a number above 0/],
    ['reduction_factor', -4, /"reduction_factor" is -4, not a number above 0/],
    ['bottleneck', 2.5, /"bottleneck" is 2\.5, not a positive integer/],
    ['bottleneck', 0, /"bottleneck" is 0, not a positive integer/],
    ['scaling', 'NaN', /"scaling" is the string "NaN"; it must be a finite number/],
    ['placement', 'sideways', /"placement" is the string "sideways", not one of "houlsby", "pfeiffer", "parallel"/],
    ['placement', 'toString', /"placement" is the string "toString", not one of/],
    ['non_linearity', 'sigmoid', /"non_linearity" is the string "sigmoid", not one of "relu", "gelu", "swish", "tanh"/],
    ['positions', ['output'], /"positions" is the array \["output"\], not a list of attention, feedforward/],
    ['positions', 'feedforward', /"positions" is the string "feedforward", not a list of names/],
    ['sites', undefined, /"sites" is missing/],
    ['sites', [], /"sites" is an empty list/],
    ['sites', 'encoder.layer.0.output', /"sites" is the string .*, not a list of names/],
  ])('refuses %s = %j', (key, value, message) => {
    rejects(() => adapterMethod.fromConfig(withField(key, value)), new RegExp(`^adapter_config\\.json: ${message.source}`));
  });

  it.each([
    ['reductionFactor', '0', /adapter option reductionFactor=0 is not a number above 0/],
    ['reductionFactor', '-2', /adapter option reductionFactor=-2 is not a number above 0/],
    ['bottleneck', '2.5', /adapter option bottleneck=2\.5 is not a positive integer/],
    ['scaling', 'NaN', /adapter option scaling=NaN is not a finite number/],
    ['placement', 'sideways', /adapter option placement=sideways is not one of houlsby, pfeiffer, parallel/],
    ['nonLinearity', 'sigmoid', /adapter option nonLinearity=sigmoid is not one of relu, gelu, swish, tanh/],
    ['positions', 'attention,output', /adapter option positions=attention,output is not a list of attention, feedforward/],
    ['layers', 'x', /adapter option layers=x is not layer indices/],
  ])('refuses --opt %s=%s', (key, value, message) => {
    rejects(() => adapterMethod.options.parse({ [key]: value }), message);
  });

  it('parses good --opt values', () => {
    expect(
      adapterMethod.options.parse({ placement: 'parallel', positions: 'attention,feedforward', reductionFactor: '0.5', scaling: '-1' }),
    ).toEqual({
      placement: 'parallel',
      positions: ['attention', 'feedforward'],
      reductionFactor: 0.5,
      scaling: -1,
    });
    expect(adapterMethod.options.parse({ positions: 'feedforward' }).positions).toEqual(['feedforward']);
  });

  it('the API refuses the same values', () => {
    rejects(
      () => adapter({ placement: 'toString' as never }),
      /adapter: placement must be one of houlsby, pfeiffer, parallel, got toString/,
    );
    rejects(() => adapter({ scaling: NaN }), /scaling must be a finite number/);
    rejects(() => adapter({ bottleneck: 0 }), /bottleneck must be a positive integer/);
    rejects(() => adapter({ reductionFactor: Infinity }), /reductionFactor must be a number above 0/);
  });
});
