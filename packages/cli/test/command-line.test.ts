import { describe, expect, it } from 'vitest';
import { DeltaTuneError } from '@deltatune/core';
import { Flags } from '../src/args';
import { flag } from '../src/command-line/flag-schema';
import { parseCommandLine } from '../src/command-line/parse-line';

const SCHEMA = {
  model: flag({ type: 'text', help: 'the backbone', default: 'use-lite' }),
  steps: flag({ type: 'positiveInteger', help: 'steps' }),
  lr: flag({ type: 'positive', help: 'rate', default: 0.001 }),
  seed: flag({ type: 'integer', help: 'seed', default: 0 }),
  task: flag({ type: { choices: ['classification', 'lm'] }, help: 'task', default: 'classification' }),
  method: flag({ type: 'text', help: 'a method', repeatable: true }),
  opt: flag({ type: 'text', help: 'an option', repeatable: true }),
  out: flag({ type: 'text', help: 'a folder', placeholder: 'DIR' }),
  resume: flag({ type: 'switch', help: 'resume' }),
  help: flag({ type: 'switch', help: 'help', short: 'h' }),
} as const;

const flags = (...args: string[]) => new Flags(parseCommandLine('train', args, SCHEMA), 'train', SCHEMA);

/** The error `run` throws, as the CLI prints it. */
function refusal(run: () => unknown): { message: string; fix?: string } {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(DeltaTuneError);
    return { message: (e as DeltaTuneError).message.split('\n')[0], fix: (e as DeltaTuneError).fix };
  }
  throw new Error('expected a refusal');
}

describe('the command line: parsed with node:util parseArgs, checked against the command schema', () => {
  it('types each flag as declared, with its default when not given', () => {
    const f = flags('--steps', '30', '--lr=0.5', '--seed', '-3', '--resume');
    expect(f.value('steps')).toBe(30);
    expect(f.value('lr')).toBe(0.5);
    expect(f.value('seed')).toBe(-3);
    expect(f.value('resume')).toBe(true);
    expect(f.value('model')).toBe('use-lite');
    expect(f.value('task')).toBe('classification');
    expect(f.value('out')).toBeUndefined();
    expect(flags('--resume=false').value('resume')).toBe(false);
    expect(flags('--model', 'a', '--model', 'b').value('model')).toBe('b');
  });

  it('keeps --method / --opt order: each option belongs to the method before it', () => {
    const f = flags('--method', 'lora', '--opt', 'r=4', '--opt', 'alpha=8', '--method', 'bitfit', '--method', 'lora', '--opt=r=2');
    expect(f.methods()).toEqual([
      { name: 'lora', options: { r: '4', alpha: '8' } },
      { name: 'bitfit', options: {} },
      { name: 'lora', options: { r: '2' } },
    ]);
    expect(refusal(() => flags('--opt', 'r=4', '--method', 'lora').methods()).message).toBe('--opt comes before any --method');
  });

  it('names an unknown flag as unknown, with the known flag it is closest to, and none when nothing is near', () => {
    const typo = refusal(() => flags('--modle', 'use-lite'));
    expect(typo.message).toBe('deltatune train does not take --modle');
    expect(typo.fix).toMatch(/^write --model for --modle, or run deltatune train --help/);
    const far = refusal(() => flags('--steps', '1', '--bogus'));
    expect(far.message).toBe('deltatune train does not take --bogus');
    expect(far.fix).toBe('run deltatune train --help for every flag it takes');
    expect(refusal(() => flags('-x')).message).toBe('deltatune train does not take -x');
  });

  it('refuses a value outside the flag type, naming the flag, with an example in the fix', () => {
    expect(refusal(() => flags('--steps', '2.5'))).toEqual({
      message: '--steps must be a whole number >= 1, got "2.5"',
      fix: 'e.g. --steps 8',
    });
    expect(refusal(() => flags('--lr', '-1'))).toEqual({ message: '--lr must be a positive number, got "-1"', fix: 'e.g. --lr 0.001' });
    expect(refusal(() => flags('--lr', ''))).toMatchObject({ message: '--lr must be a positive number, got ""' });
    expect(refusal(() => flags('--task', 'regression'))).toEqual({
      message: '--task must be one of classification, lm, got "regression"',
      fix: 'e.g. --task classification',
    });
    expect(refusal(() => flags('--resume=yes')).message).toBe('--resume is a switch and takes no value, got "yes"');
  });

  it('a flag left without its value says so, also when the next word is another flag', () => {
    expect(refusal(() => flags('--out'))).toEqual({ message: '--out needs a value', fix: 'write --out DIR' });
    // parseArgs alone would make a folder named "--resume".
    expect(refusal(() => flags('--out', '--resume')).message).toBe('--out needs a value');
    expect(flags('--out=--odd').value('out')).toBe('--odd');
  });

  it('--help and -h win over anything else on the line', () => {
    expect(parseCommandLine('train', ['--modle', 'x', '--help'], SCHEMA).help).toBe(true);
    expect(parseCommandLine('train', ['-h'], SCHEMA).help).toBe(true);
    expect(parseCommandLine('train', ['--steps', '3'], SCHEMA).help).toBe(false);
  });

  it('reading a flag the schema does not declare is a bug, said plainly', () => {
    expect(() => flags().string('nowhere')).toThrow(/reads --nowhere, which its flag schema does not declare/);
  });
});
