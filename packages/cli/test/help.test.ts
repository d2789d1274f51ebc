import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The help line of a flag or an option: its name first (after the indent), then the rest of the line. */
const line = (text: string, name: string) => text.split('\n').find((l) => l.trimStart().split(/\s+/)[0] === name);

describe('deltatune <command> --help', () => {
  it('train: every flag with what it accepts and its default, and each built-in method with its options', () => {
    const r = cli(['train', '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(line(r.stdout, '--batch-size')).toMatch(/--batch-size N\s+a whole number >= 1\s+examples per step \(default 32\)$/);
    expect(line(r.stdout, '--task')).toMatch(/one of classification, lm, sft .*\(default classification\)$/);
    expect(line(r.stdout, '--delta-lr')).toMatch(/\(repeatable\)/);
    expect(line(r.stdout, '--resume')).toMatch(/no value/);
    // LoRA's rank, as @deltatune/lora declares it, under the lora heading.
    const lora = r.stdout.slice(r.stdout.indexOf('\n  lora ('));
    expect(lora).toMatch(/^ {2}lora \(@deltatune\/lora [\d.]+\): /m);
    expect(line(lora, 'r')).toMatch(/^ {4}r\s+a positive integer\s+rank of the update \(default 8\)$/);
    expect(line(lora, 'dropout')).toMatch(/a number in \[0, 1\)/);
    for (const method of ['dora', 'vera', 'loha', 'lokr', 'adapter', 'bitfit', 'prefix', 'prompt'])
      expect(r.stdout).toMatch(new RegExp(`^ {2}${method} \\(`, 'm'));
    // The LyCORIS package's options, under its own heading.
    const lokr = r.stdout.slice(r.stdout.indexOf('\n  lokr ('));
    expect(lokr).toMatch(/^ {2}lokr \(@deltatune\/lycoris [\d.]+\): /m);
    expect(line(lokr, 'decomposeFactor')).toMatch(/an integer .*\(default -1\)$/);
    expect(line(lokr, 'init')).toMatch(/one of default, lycoris, random/);
    expect(r.stdout).not.toMatch(/^ {2}ia3 /m);
  });

  it('lists the methods of a --plugin on the same line, with their options', () => {
    const r = cli(['train', '--plugin', './examples/plugin-ia3', '--help']);
    expect(r.code, r.stderr).toBe(0);
    const ia3 = r.stdout.slice(r.stdout.indexOf('\n  ia3 ('));
    expect(ia3).toMatch(/^ {2}ia3 \(deltatune-plugin-ia3 [\d.]+\): IA3/m);
    expect(line(ia3, 'feedforward')).toMatch(/a list of names/);
    expect(line(ia3, 'seed')).toMatch(/an integer .*\(default 0\)$/);
  });

  it('experiment and inspect list the methods too; eval, which attaches none, lists only its flags', () => {
    const experiment = cli(['experiment', '--help']);
    expect(experiment.code, experiment.stderr).toBe(0);
    expect(experiment.stdout).toMatch(/methods for a grid delta's "method"/);
    expect(line(experiment.stdout, '--workers')).toMatch(/a whole number >= 0 .*\(default 1, or 0 with --queue\)$/);
    expect(line(experiment.stdout, '--queue')).toMatch(/a redis:\/\/ or rediss:\/\/ URL/);
    // --shard is what the command passes its own workers.
    expect(line(experiment.stdout, '--shard')).toBeUndefined();
    expect(cli(['inspect', '--help']).stdout).toMatch(/^ {2}lora \(/m);
    const evaluate = cli(['eval', '--help']);
    expect(evaluate.code).toBe(0);
    expect(line(evaluate.stdout, '--split')).toMatch(/one of test, validation .*\(default test\)$/);
    expect(line(evaluate.stdout, '--batch-size')).toMatch(/\(default the run's\)$/);
    expect(evaluate.stdout).not.toMatch(/^ {2}lora \(/m);
  });

  it('-h, `deltatune help <command>` and --help beside a bad flag show the same help, exit 0', () => {
    const help = cli(['train', '--help']).stdout;
    for (const args of [
      ['train', '-h'],
      ['help', 'train'],
      ['train', '--modle', 'x', '--help'],
    ]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toBe(help);
    }
  });

  it('every command has a help that lists its flags; the top-level help names every command', () => {
    const top = cli(['--help']);
    expect(top.code).toBe(0);
    const commands = ['demo', 'train', 'eval', 'forward', 'inspect', 'merge', 'experiment', 'worker', 'bench'];
    for (const c of commands) {
      expect(top.stdout).toMatch(new RegExp(`^ {2}${c} `, 'm'));
      const r = cli([c, '--help']);
      expect(r.code, c).toBe(0);
      expect(line(r.stdout, '--backend'), c).toMatch(/one of auto/);
      expect(line(r.stdout, '--json'), c).toBeDefined();
    }
    expect(line(cli(['bench', '--help']).stdout, '--batch')).toMatch(/\(default 32\)$/);
  });
});
