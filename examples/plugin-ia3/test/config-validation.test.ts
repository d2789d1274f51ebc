import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { rejects } from '../../../test-errors';
import { ia3Method } from '../src/index';

const FIX = fileURLToPath(new URL('../../../fixtures/peft-reference/bert-ia3/adapter_config.json', import.meta.url));
const good = () => JSON.parse(readFileSync(FIX, 'utf8')) as Record<string, unknown>;

describe('IA3 config and --opt validation', () => {
  it('the PEFT fixture loads', () => {
    expect(ia3Method.fromConfig(good()).options.feedforward).toEqual(['output.dense']);
  });

  it.each([null, [], 1])('refuses a config that is %j', (config) => {
    rejects(() => ia3Method.fromConfig(config as never), /^adapter_config\.json holds .*, not a JSON object/);
  });

  it.each([
    ['target_modules', 5, /"target_modules" is 5, not a string or a list of strings/],
    ['feedforward_modules', [1], /"feedforward_modules" is \[1\], not a string or a list/],
    ['feedforward_modules', ['intermediate.dense'], /"feedforward_modules" holds "intermediate.dense", which is not in "target_modules"/],
    ['fan_in_fan_out', 'false', /"fan_in_fan_out" is "false", not true or false/],
  ])('refuses %s = %j', (key, value, message) => {
    rejects(() => ia3Method.fromConfig({ ...good(), [key]: value }), message);
  });

  it('--opt: the old string types still parse; layers and numbers are checked', () => {
    expect(ia3Method.options.parse({ targets: 'key,value', seed: '2', layers: '0' })).toEqual({
      targets: ['key', 'value'],
      seed: 2,
      layers: [0],
    });
    rejects(() => ia3Method.options.parse({ layers: 'all' }), /ia3 option layers=all is not layer indices/);
    rejects(() => ia3Method.options.parse({ seed: 'NaN' }), /ia3 option seed=NaN is not an integer/);
    rejects(() => ia3Method.options.parse({ seed: '1e999' }), /ia3 option seed=1e999 is not an integer/);
  });
});
