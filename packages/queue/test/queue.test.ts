import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeltaTuneError } from '@deltatune/core';
import {
  enqueueJobs,
  followJobs,
  maskPassword,
  openQueue,
  openRedis,
  parseQueueUrl,
  runQueueWorker,
  type JobEnvelope,
} from '@deltatune/queue';
import { redisMissing, startRedis, type RedisServer } from '../../../test-redis';

describe('parseQueueUrl', () => {
  it('reads host, port, database and TLS; prints without the password', () => {
    expect(parseQueueUrl('redis://127.0.0.1')).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0, tls: false });
    const u = parseQueueUrl('rediss://user:p%40ss@cache.example:6380/7');
    expect(u).toMatchObject({ host: 'cache.example', port: 6380, db: 7, tls: true });
    expect(u.display).toBe('rediss://user:***@cache.example:6380/7');
    expect(maskPassword('redis://:hunter2@h:1/0')).toBe('redis://:***@h:1/0');
    expect(maskPassword('redis://h:1/0')).toBe('redis://h:1/0');
  });

  it('refuses what is not a Redis URL, naming the part, with an example that works, and never echoes the password', () => {
    for (const [text, what] of [
      ['not a url', /is not a URL/],
      ['https://h:6379', /is a https: URL, not redis: or rediss:/],
      ['redis://:pw@h:6379/queue', /has the path \/queue/],
      ['redis://h:6379/1?family=6', /has \?family/],
    ] as const) {
      let caught: unknown;
      try {
        parseQueueUrl(text);
      } catch (e) {
        caught = e;
      }
      expect(caught, text).toBeInstanceOf(DeltaTuneError);
      expect((caught as Error).message, text).toMatch(what);
      expect((caught as Error).message).not.toMatch(/:pw@/);
      expect((caught as DeltaTuneError).fix).toMatch(/--queue redis:\/\/127\.0\.0\.1:6379/);
    }
    // HOST:PORT as redis-cli takes it: the fix is the same address as a URL.
    for (const text of ['127.0.0.1:6379', 'localhost:6379', 'cache.example']) {
      expect(() => parseQueueUrl(text)).toThrow(`--queue ${text} has no redis:// in front`);
      try {
        parseQueueUrl(text);
      } catch (e) {
        expect((e as DeltaTuneError).fix).toBe(`write it as a URL: --queue redis://${text}`);
      }
    }
  });
});

const missing = redisMissing();

describe.skipIf(missing)('enqueue, follow and work on a real Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => redis?.stop());

  const job = (id: string, spec = `spec-${id}`, version = '1.0.0'): JobEnvelope<{ n: number }> => ({
    id,
    spec,
    version,
    files: {},
    payload: { n: Number(id.slice(1)) },
  });
  const opts = { attempts: 2, backoffMs: 10, overwrite: false };

  it('job id = cell id: enqueueing twice, or from two connections at once, adds each job once', async () => {
    const url = parseQueueUrl(`${redis.url}/1`);
    const [a, b] = [await openRedis(url, 'a'), await openRedis(url, 'b')];
    const [qa, qb] = [openQueue(a), openQueue(b)];
    const jobs = ['c1', 'c2', 'c3', 'c4'].map((id) => job(id));
    const [ra, rb] = await Promise.all([enqueueJobs(qa, jobs, opts), enqueueJobs(qb, jobs, opts)]);
    // Each id was added by exactly one of the two; the other found it queued.
    expect([...ra.added, ...rb.added].sort()).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect([...ra.queued, ...rb.queued].sort()).toEqual(['c1', 'c2', 'c3', 'c4']);
    expect(await qa.getJobCounts('wait')).toEqual({ wait: 4 });
    const again = await enqueueJobs(qa, jobs, opts);
    expect(again).toMatchObject({ added: [], queued: ['c1', 'c2', 'c3', 'c4'], conflicts: [] });
    // Another spec or version under the same id is a conflict, not a silent replacement.
    const edited = await enqueueJobs(qa, [job('c1', 'other'), job('c2', 'spec-c2', '2.0.0')], opts);
    expect(edited.conflicts.map((c) => [c.id, c.why])).toEqual([
      ['c1', 'it was queued with other settings'],
      ['c2', 'it was queued by deltatune 1.0.0, this is 2.0.0'],
    ]);
    const replaced = await enqueueJobs(qa, [job('c1', 'other')], { ...opts, overwrite: true });
    expect(replaced.added).toEqual(['c1']);
    expect((await qa.getJob('c1'))!.data.spec).toBe('other');
    await Promise.all([qa.close(), qb.close()]);
    await Promise.all([a.quit(), b.quit()]);
  });

  it('a worker runs each job; a throwing job fails after its attempts and is reported, the rest go on; a rerun retries it', async () => {
    const url = parseQueueUrl(`${redis.url}/2`);
    const conn = await openRedis(url, 'collector');
    const queue = openQueue(conn);
    const jobs = ['j1', 'j2', 'j3'].map((id) => job(id));
    await enqueueJobs(queue, jobs, opts);
    const runs: string[] = [];
    let failing = true;
    const work = () =>
      runQueueWorker<{ n: number }, { square: number }>({
        url,
        name: 'w1',
        version: '1.0.0',
        exitWhenIdle: true,
        idleMs: 300,
        check: () => undefined,
        log: () => undefined,
        run: async (j) => {
          runs.push(j.id);
          if (j.id === 'j2' && failing) throw new Error('j2 broke');
          return { square: j.payload.n ** 2 };
        },
      });
    const summary = await work();
    expect(summary).toEqual({ completed: 2, failed: 2 });
    expect(runs.filter((id) => id === 'j2')).toHaveLength(2);
    const completed: Array<[string, number, string]> = [];
    const failed: Array<[string, string, number]> = [];
    await followJobs<{ square: number }>(
      queue,
      conn,
      jobs,
      {
        completed: (id, o) => void completed.push([id, o.result.square, o.worker]),
        failed: (id, reason, attempts) => void failed.push([id, reason, attempts]),
      },
      { pollMs: 50 },
    );
    expect(completed.sort()).toEqual([
      ['j1', 1, 'w1'],
      ['j3', 9, 'w1'],
    ]);
    expect(failed).toEqual([['j2', 'j2 broke', 2]]);
    // Enqueued again, the failed job starts over with fresh attempts; the finished ones are collected as they are.
    failing = false;
    const rerun = await enqueueJobs(queue, jobs, opts);
    expect(rerun).toMatchObject({ added: [], completed: ['j1', 'j3'], retried: ['j2'] });
    await work();
    expect((await queue.getJob('j2'))!.returnvalue.result).toEqual({ square: 4 });
    expect(runs.filter((id) => id === 'j1')).toHaveLength(1);
    await queue.close();
    await conn.quit();
  });

  it("an outcome computed for other settings is not collected as the job's", async () => {
    const url = parseQueueUrl(`${redis.url}/3`);
    const conn = await openRedis(url, 'collector');
    const queue = openQueue(conn);
    await enqueueJobs(queue, [job('k1')], opts);
    await runQueueWorker({
      url,
      name: 'w',
      version: '1.0.0',
      exitWhenIdle: true,
      idleMs: 300,
      check: () => undefined,
      log: () => undefined,
      run: async () => 1,
    });
    const failed: string[] = [];
    // The collector expects another spec for k1 than the one it ran with.
    await followJobs(
      queue,
      conn,
      [job('k1', 'edited')],
      { completed: () => expect.unreachable(), failed: (_id, reason) => void failed.push(reason) },
      { pollMs: 50 },
    );
    expect(failed).toEqual([expect.stringMatching(/computed for other settings/)]);
    await queue.close();
    await conn.quit();
  });
});
