// How the CLI shares cores: --threads' default, the split between side-by-side workers, and how
// durations print (a run's time is the figure these threads change).
import { afterEach, describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { formatSeconds } from '../src/progress';
import { defaultThreads, MAX_WASM_THREADS, threadsEach } from '../src/threads';

describe('threads', () => {
  const saved = process.env.DELTATUNE_THREADS;
  afterEach(() => {
    if (saved === undefined) delete process.env.DELTATUNE_THREADS;
    else process.env.DELTATUNE_THREADS = saved;
  });

  it('defaults to DELTATUNE_THREADS, else every core up to the 8 tfjs starts; bad values are ignored', () => {
    process.env.DELTATUNE_THREADS = '3';
    expect(defaultThreads()).toBe(3);
    process.env.DELTATUNE_THREADS = '64';
    expect(defaultThreads()).toBe(MAX_WASM_THREADS);
    for (const bad of ['0', '-2', '1.5', 'many', '']) {
      process.env.DELTATUNE_THREADS = bad;
      expect(defaultThreads(), bad).toBe(Math.min(availableParallelism(), MAX_WASM_THREADS));
    }
  });

  it('splits the threads between workers started side by side, at least one each', () => {
    expect(threadsEach(1, 8)).toBe(8);
    expect(threadsEach(2, 8)).toBe(4);
    expect(threadsEach(3, 8)).toBe(2);
    expect(threadsEach(4, 2)).toBe(1);
    expect(threadsEach(0, 2)).toBe(2);
  });

  it('prints durations rounded once: 119.6 s is 2m00s, not 1m60s', () => {
    expect(formatSeconds(119.6)).toBe('2m00s');
    expect(formatSeconds(59.6)).toBe('1m00s');
    expect(formatSeconds(59.4)).toBe('59s');
    expect(formatSeconds(200)).toBe('3m20s');
    expect(formatSeconds(3599.5)).toBe('60m00s');
    expect(formatSeconds(NaN)).toBe('?');
  });
});
