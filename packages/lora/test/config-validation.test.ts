import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { rejects } from '../../../test-errors';
import { attach } from '@deltatune/core';
import { loadHuggingFaceFolder } from '@deltatune/models/node';
import { loraMethod, optionsFromPeft } from '../src/index';

const FIX = fileURLToPath(new URL('../../../fixtures/peft-reference/', import.meta.url));
const fixture = (dir: string) => JSON.parse(readFileSync(`${FIX}${dir}/adapter_config.json`, 'utf8')) as Record<string, unknown>;

const base = () => fixture('bert-lora');
const withField = (key: string, value: unknown) => ({ ...base(), [key]: value });

describe('lora adapter_config.json validation', () => {
  it('valid PEFT fixtures still load, with no warnings', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    for (const dir of ['bert-lora', 'gpt2-lora']) {
      const spec = loraMethod.fromConfig(fixture(dir));
      expect(spec.options.r).toBeGreaterThan(0);
    }
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it.each([null, [], [1, 2], 4, 'LORA'])('refuses a config that is %j, not an object', (config) => {
    rejects(() => loraMethod.fromConfig(config as never), /^adapter_config\.json holds .*, not a JSON object/);
  });

  it.each([
    ['r', '4', /"r" is the string "4"; it must be a positive integer/],
    ['r', 0, /"r" is 0, not a positive integer/],
    ['r', -1, /"r" is -1, not a positive integer/],
    ['r', 2.5, /"r" is 2\.5, not a positive integer/],
    ['r', null, /"r" is null/],
    ['r', undefined, /"r" is missing/],
    ['lora_alpha', 'NaN', /"lora_alpha" is the string "NaN"; it must be a finite number/],
    ['lora_alpha', '16', /"lora_alpha" is the string "16"/],
    ['lora_alpha', [16], /"lora_alpha" is the array \[16\], not a finite number/],
    ['lora_dropout', 1, /"lora_dropout" is 1, not a number in \[0, 1\)/],
    ['lora_dropout', -0.1, /"lora_dropout" is -0\.1, not a number in \[0, 1\)/],
    ['lora_dropout', '0.1', /"lora_dropout" is the string "0\.1"/],
    ['use_rslora', 'true', /"use_rslora" is the string "true", not true or false/],
    ['bias', 'some', /"bias" is the string "some", not one of "none", "all", "lora_only"/],
    ['target_modules', 5, /"target_modules" is number 5, not a string or a list of strings/],
    ['target_modules', ['query', 3], /"target_modules" is the array .*, not a string or a list of strings/],
    ['target_modules', [], /"target_modules" is an empty list/],
    ['target_modules', '(query', /"target_modules" is the string "\(query", which is not a valid regular expression/],
    ['exclude_modules', { a: 1 }, /"exclude_modules" is the object/],
    ['layers_to_transform', '0', /"layers_to_transform" is the string "0", not a layer index/],
    ['layers_to_transform', [0.5], /"layers_to_transform" is the array \[0\.5\]/],
    ['layers_to_transform', -1, /"layers_to_transform" is number -1/],
    ['fan_in_fan_out', 'no', /"fan_in_fan_out" is the string "no", not true or false/],
    ['use_dora', 'true', /"use_dora" is the string "true", not true or false/],
    ['lora_bias', true, /lora_bias=true is not supported/],
    ['rank_pattern', { query: 8 }, /rank_pattern=\{"query":8\} is not supported/],
    ['alpha_pattern', { value: 4 }, /alpha_pattern=.* is not supported/],
    ['rank_pattern', 'x', /rank_pattern="x" is not supported/],
    ['layer_replication', [[0, 1]], /layer_replication=.* is not supported/],
  ])('refuses %s = %j', (key, value, message) => {
    const e = rejects(() => loraMethod.fromConfig(withField(key, value)), message);
    expect(e.message).toMatch(/^adapter_config\.json: /);
    expect(e.fix).toBeTruthy();
  });

  it('accepts what PEFT accepts: alpha 0 or negative, a regex string, one layer index, null fields', () => {
    expect(optionsFromPeft(withField('lora_alpha', 0)).options.alpha).toBe(0);
    expect(optionsFromPeft(withField('lora_alpha', -8)).options.alpha).toBe(-8);
    expect(optionsFromPeft(withField('lora_alpha', 0.5)).options.alpha).toBe(0.5);
    expect(optionsFromPeft(withField('target_modules', '.*(query|value)')).options.targets).toBeInstanceOf(RegExp);
    expect(optionsFromPeft(withField('layers_to_transform', 1)).options.layers).toEqual([1]);
    const nulls = optionsFromPeft({ ...base(), lora_alpha: null, lora_dropout: null, bias: null, use_rslora: null }).options;
    expect(nulls).toMatchObject({ alpha: 8, dropout: 0, bias: 'none', rsLoRA: false });
  });

  it('fan_in_fan_out that does not fit the backbone warns at attach, as PEFT does, and loads', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const model = loadHuggingFaceFolder(`${FIX}bert`);
    const delta = attach(model, loraMethod.fromConfig(withField('fan_in_fan_out', true)));
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/fan_in_fan_out=true, but this is a bert backbone/));
    delta.detach();
    model.dispose();
    warn.mockRestore();
  });

  it('fix text says what works', () => {
    expect(rejects(() => loraMethod.fromConfig(withField('r', '4')), /"r"/).fix).toBe(
      'set "r" to a positive integer such as 8 (a JSON number, no quotes)',
    );
  });
});

describe('lora --opt validation', () => {
  it.each([
    ['r', '0', /lora option r=0 is not a positive integer/],
    ['r', '2.5', /lora option r=2\.5 is not a positive integer/],
    ['r', '-1', /lora option r=-1 is not a positive integer/],
    ['r', 'four', /lora option r=four is not a positive integer/],
    ['dropout', '1.5', /lora option dropout=1\.5 is not a number in \[0, 1\)/],
    ['dropout', '1', /lora option dropout=1 is not a number in \[0, 1\)/],
    ['alpha', 'NaN', /lora option alpha=NaN is not a finite number/],
    ['alpha', 'Infinity', /lora option alpha=Infinity is not a finite number/],
    ['alpha', '1e999', /lora option alpha=1e999 is not a finite number/],
    ['bias', 'some', /lora option bias=some is not one of none, all, lora_only/],
    ['init', 'zeros', /lora option init=zeros is not one of kaiming, random/],
    ['rsLoRA', 'yes', /lora option rsLoRA=yes is not a boolean/],
    ['seed', '1.5', /lora option seed=1\.5 is not an integer/],
    ['layers', 'first', /lora option layers=first is not layer indices/],
    ['layers', '[0.5]', /lora option layers=\[0\.5\] is not layer indices/],
    ['targets', '[1,2]', /lora option targets=\[1,2\] is not a list of names/],
    ['rank', '8', /lora has no option "rank"/],
  ])('refuses --opt %s=%s', (key, value, message) => {
    const e = rejects(() => loraMethod.options.parse({ [key]: value }), message);
    expect(e.fix).toBeTruthy();
  });

  it('parses good values, as before', () => {
    expect(
      loraMethod.options.parse({
        r: '4',
        alpha: '-8',
        dropout: '0.1',
        bias: 'lora_only',
        targets: 'query,value',
        layers: '0,1',
        seed: '3',
      }),
    ).toEqual({
      r: 4,
      alpha: -8,
      dropout: 0.1,
      bias: 'lora_only',
      targets: ['query', 'value'],
      layers: [0, 1],
      seed: 3,
    });
    expect(loraMethod.options.parse({ layers: '1' }).layers).toEqual([1]);
    expect(loraMethod.options.parse({ layers: '{"from":0,"to":1}' }).layers).toEqual({ from: 0, to: 1 });
    expect(loraMethod.options.parse({ targets: 'query' }).targets).toEqual(['query']);
  });
});
