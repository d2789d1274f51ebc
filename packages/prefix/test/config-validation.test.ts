import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rejects } from '../../../test-errors';
import { attach } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { prefixMethod, promptMethod, promptTuning } from '../src/index';

const FIXTURES = new URL('../../../fixtures/peft-reference/', import.meta.url).pathname;
const fixture = (dir: string) => JSON.parse(readFileSync(`${FIXTURES}${dir}/adapter_config.json`, 'utf8')) as Record<string, unknown>;

const file = (m: RegExp) => new RegExp(`^adapter_config\\.json: ${m.source}`);

describe('prompt and prefix config validation', () => {
  it('the PEFT fixtures still load', () => {
    expect(promptMethod.fromConfig(fixture('bert-prompt')).options.virtualTokens).toBe(4);
    expect(prefixMethod.fromConfig(fixture('bert-prefix')).options.virtualTokens).toBe(4);
  });

  it.each([null, [], 3.5])('refuses a config that is %j', (config) => {
    for (const method of [promptMethod, prefixMethod]) {
      rejects(() => method.fromConfig(config as never), /^adapter_config\.json holds .*, not a JSON object/);
    }
  });

  const shared: Array<[string, unknown, RegExp]> = [
    ['num_virtual_tokens', '4', /"num_virtual_tokens" is the string "4"; it must be a positive integer/],
    ['num_virtual_tokens', 0, /"num_virtual_tokens" is 0, not a positive integer/],
    ['num_virtual_tokens', 2.5, /"num_virtual_tokens" is 2\.5, not a positive integer/],
    ['num_virtual_tokens', undefined, /"num_virtual_tokens" is missing/],
    ['num_transformer_submodules', 2, /"num_transformer_submodules" is 2: PEFT .* encoder-decoder models is not supported/],
    ['num_transformer_submodules', '1', /"num_transformer_submodules" is the string "1"/],
    ['token_dim', -32, /"token_dim" is -32, not a positive integer/],
    ['num_layers', 'two', /"num_layers" is the string "two"/],
  ];

  it.each([
    ...shared,
    ['prompt_tuning_init', 'ZEROS', /"prompt_tuning_init" is the string "ZEROS", not one of "RANDOM", "SAMPLE_VOCAB", "TEXT"/],
    ['prompt_tuning_init_text', 5, /"prompt_tuning_init_text" is not a string/],
  ] as Array<[string, unknown, RegExp]>)('prompt refuses %s = %j', (key, value, message) => {
    rejects(() => promptMethod.fromConfig({ ...fixture('bert-prompt'), [key]: value }), file(message));
  });

  it.each([
    ...shared,
    ['prefix_projection', 'false', /"prefix_projection" is the string "false", not true or false/],
    ['encoder_hidden_size', 0, /"encoder_hidden_size" is 0, not a positive integer/],
    ['attention_sites', 'encoder.layer.0.attention', /"attention_sites" is the string .*, not a list of names/],
    ['attention_sites', [], /"attention_sites" is an empty list/],
  ] as Array<[string, unknown, RegExp]>)('prefix refuses %s = %j', (key, value, message) => {
    rejects(() => prefixMethod.fromConfig({ ...fixture('bert-prefix'), [key]: value }), file(message));
  });

  it.each([
    [promptMethod, 'virtualTokens', '0', /prompt option virtualTokens=0 is not a positive integer/],
    [promptMethod, 'virtualTokens', '2.5', /prompt option virtualTokens=2\.5 is not a positive integer/],
    [promptMethod, 'init', 'zeros', /prompt option init=zeros is not one of vocab, random, text/],
    [promptMethod, 'initTokenIds', '[1,-2]', /prompt option initTokenIds=\[1,-2\] is not a list of non-negative integers/],
    [promptMethod, 'initTokenIds', 'hello', /prompt option initTokenIds=hello is not a list of non-negative integers/],
    [prefixMethod, 'virtualTokens', '-1', /prefix option virtualTokens=-1 is not a positive integer/],
    [prefixMethod, 'projectionHidden', '0', /prefix option projectionHidden=0 is not a positive integer/],
    [prefixMethod, 'initStd', '-0.1', /prefix option initStd=-0\.1 is not a number of 0 or more/],
    [prefixMethod, 'initStd', 'NaN', /prefix option initStd=NaN is not a number of 0 or more/],
    [prefixMethod, 'projection', 'maybe', /prefix option projection=maybe is not a boolean/],
  ] as const)('refuses --opt (%#) %s=%s', (method, key, value, message) => {
    rejects(() => method.options.parse({ [key]: value }), message);
  });

  it('parses good --opt values', () => {
    expect(promptMethod.options.parse({ virtualTokens: '4', init: 'text', initTokenIds: '101,2023', initText: 'a, b' })).toEqual({
      virtualTokens: 4,
      init: 'text',
      initTokenIds: [101, 2023],
      initText: 'a, b',
    });
    expect(promptMethod.options.parse({ initTokenIds: '7' }).initTokenIds).toEqual([7]);
    expect(prefixMethod.options.parse({ initStd: '0', projectionHidden: '16' })).toEqual({ initStd: 0, projectionHidden: 16 });
  });

  it('the API refuses a bad init and token ids past the vocabulary', () => {
    rejects(() => promptTuning({ init: 'zeros' as never }), /prompt: init must be one of vocab, random, text, got zeros/);
    rejects(
      () => promptTuning({ init: 'text', initTokenIds: [1.5] }),
      /prompt: initTokenIds must be a list of non-negative integers, got \[1.5\]/,
    );
    const model = loadHuggingFaceFolder(`${FIXTURES}bert`);
    rejects(
      () => attach(model, promptTuning({ init: 'text', initTokenIds: [1, 10 ** 7] })),
      /initTokenIds holds 10000000, but the vocabulary has \d+ tokens/,
    );
    model.dispose();
  });
});
