// deltatune experiment --queue and deltatune worker against a real redis-server (started here on a
// free loopback port): cells exactly once despite a killed and a frozen worker, the same rows as a
// local run, refusals, conflicts, a password, TLS and the errors a user meets first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue, openRedis, parseQueueUrl, REFUSALS_KEY } from '@deltatune/queue';
import { freePort, redisMissing, startRedis, type RedisServer } from '../../../test-redis';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const tmp = mkdtempSync(join(tmpdir(), 'queue-'));
const missing = redisMissing();

interface Run {
  readonly child: ChildProcess;
  stderr: string;
  stdout: string;
  readonly exit: Promise<number>;
}

function start(args: readonly string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const run: Run = {
    child,
    stderr: '',
    stdout: '',
    exit: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)))),
  };
  child.stdout!.on('data', (d) => (run.stdout += d));
  child.stderr!.on('data', (d) => (run.stderr += d));
  return run;
}

function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function gridFile(name: string, grid: object): string {
  const path = join(tmp, `${name}.json`);
  writeFileSync(path, JSON.stringify({ name, model: 'use-lite', target: 0.6, ...grid }));
  return path;
}

const TINY = { name: 'tiny', steps: 20, batchSize: 8, maxLength: 16, learningRate: 0.003, evalEvery: 5 };
const SPAM = { dataset: 'spam', limits: { train: 48, validation: 16, test: 32 } };
// LoRA without dropout and BitFit, three seeds: six cells whose numbers depend on the seed.
const SIX = gridFile('six', {
  tasks: [SPAM],
  seeds: [0, 1, 2],
  budgets: [TINY],
  methods: [
    { name: 'lora', deltas: [{ method: 'lora', options: { r: 2, dropout: 0 } }] },
    { name: 'bitfit', deltas: [{ method: 'bitfit' }] },
  ],
});
const ONE = (learningRate: number) =>
  gridFile(`one-${learningRate}`, {
    tasks: [SPAM],
    seeds: [0],
    budgets: [{ ...TINY, name: 'short', steps: 4, learningRate }],
    methods: [{ name: 'bitfit', deltas: [{ method: 'bitfit' }] }],
  });

const rows = (out: string) =>
  readFileSync(join(out, 'results.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
// Wall time and memory peaks are the machine's, not the cell's: everything else must be equal.
const comparable = (r: Record<string, unknown>) => {
  const { seconds, peakBytes, ...rest } = r;
  expect(seconds).toBeGreaterThan(0);
  expect(peakBytes).toBeGreaterThan(0);
  return rest;
};
/** `[worker] cell-id: test accuracy` lines of a collector: who finished what. */
const collected = (stderr: string) =>
  [...stderr.matchAll(/^ {2}\[([^\]]+)\] (\S+): test accuracy/gm)].map((m) => ({ worker: m[1], id: m[2] }));
const workerName = (run: Run) => `${/worker (\S+): taking cells/.exec(run.stderr)?.[1]}`;
/** The error a command printed: one `error:` line, then its `fix:`. */
const errorOf = (stderr: string) => {
  const lines = stderr.trim().split('\n');
  const at = lines.findIndex((l) => l.startsWith('error: '));
  expect(at, stderr).toBeGreaterThanOrEqual(0);
  expect(lines[at + 1], stderr).toMatch(/^ {2}fix: \S/);
  return { error: lines[at], fix: lines[at + 1] };
};

describe.skipIf(missing)('experiment --queue and worker on a real Redis', () => {
  let redis: RedisServer;
  let local: Record<string, unknown>[];
  beforeAll(async () => {
    redis = await startRedis();
    const r = cli(['experiment', SIX, '--out', join(tmp, 'local')]);
    expect(r.code, r.stderr).toBe(0);
    local = rows(join(tmp, 'local'));
    expect(local).toHaveLength(6);
  });
  afterAll(async () => redis?.stop());

  it('three workers, one killed (SIGKILL) and one frozen (SIGSTOP) mid-cell: every cell once, equal to the local run', async () => {
    const out = join(tmp, 'queued');
    const worker = () => start(['worker', '--queue', redis.url, '--exit-when-idle', '--lock-seconds', '3']);
    const [killed, frozen, steady] = [worker(), worker(), worker()];
    const collector = start(['experiment', SIX, '--out', out, '--queue', redis.url]);
    // Each is stopped a second into its first cell: the cell is active in BullMQ and training.
    const firstCell = (w: Run) => /: (\S+) \(attempt 1 of 3\)/.exec(w.stderr)?.[1];
    await until('the first cells to start', () => !!firstCell(killed) && !!firstCell(frozen));
    await new Promise((r) => setTimeout(r, 1000));
    killed.child.kill('SIGKILL');
    frozen.child.kill('SIGSTOP');
    const [killedCell, frozenCell] = [firstCell(killed)!, firstCell(frozen)!];

    expect(await collector.exit, collector.stderr).toBe(0);
    // The frozen worker wakes after its cell was finished elsewhere: its late result must not count.
    frozen.child.kill('SIGCONT');
    expect(await frozen.exit, frozen.stderr).toBe(0);
    expect(await steady.exit, steady.stderr).toBe(0);
    expect(frozen.stderr).not.toMatch(new RegExp(`${frozenCell} done`));
    // Its late finish was refused by BullMQ (the lock is another's), or it saw the lost lock first.
    expect(frozen.stderr).toMatch(new RegExp(`(lost the lock on|lock for job|Lock mismatch for job|Job) ${frozenCell}`));

    const got = rows(out);
    expect(got.map((r) => r.id)).toEqual(local.map((r) => r.id));
    got.forEach((r, i) => expect(comparable(r), String(r.id)).toEqual(comparable(local[i])));
    const byCell = collected(collector.stderr);
    expect(byCell.map((c) => c.id).sort()).toEqual(local.map((r) => String(r.id)).sort());
    // The lost cells were run again by the worker still standing.
    for (const id of [killedCell, frozenCell]) expect(byCell.find((c) => c.id === id)?.worker).toBe(workerName(steady));
    // BullMQ saw both as stalled: started twice, finished once.
    const conn = await openRedis(parseQueueUrl(redis.url), 'test');
    const queue = openQueue(conn);
    for (const id of [killedCell, frozenCell]) {
      const job = (await queue.getJob(id))!;
      expect(await job.getState()).toBe('completed');
      expect(job.attemptsStarted, id).toBeGreaterThanOrEqual(2);
      expect(job.returnvalue.worker).toBe(workerName(steady));
    }
    await queue.close();
    await conn.quit();
    // The table, but for its last two columns (seconds per run, peak MiB: the machine's).
    const table = (dir: string) => readFileSync(join(dir, 'results.md'), 'utf8').replace(/\|[^|\n]*\|[^|\n]*\|$/gm, '|');
    expect(table(out)).toBe(table(join(tmp, 'local')));

    // Enqueued again (a second collector, another folder, no worker): nothing added, all collected from Redis.
    const again = cli(['experiment', SIX, '--out', join(tmp, 'queued-again'), '--queue', redis.url]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/: 0 enqueued, 6 finished earlier/);
    rows(join(tmp, 'queued-again')).forEach((r, i) => expect(comparable(r)).toEqual(comparable(local[i])));
  });

  it('a worker of another version refuses the job, leaves it waiting untouched, and exits 1; the collector hears why', async () => {
    const url = `${redis.url}/1`;
    const conn = await openRedis(parseQueueUrl(url), 'test');
    const queue = openQueue(conn);
    const cell = { id: 'old-cell', method: { name: 'bitfit', deltas: [{ method: 'bitfit' }] }, task: SPAM, seed: 0, budget: TINY };
    await queue.add(
      'cell',
      { id: 'old-cell', spec: 'x', version: '0.0.1-old', files: {}, payload: { grid: 'g', model: 'use-lite', target: 0.6, cell } },
      { jobId: 'old-cell' },
    );
    const w = start(['worker', '--queue', url]);
    expect(await w.exit, w.stderr).toBe(1);
    const { error, fix } = errorOf(w.stderr);
    expect(error).toMatch(/refused job old-cell: it was queued by deltatune 0\.0\.1-old, this worker is \d+\.\d+\.\d+.*back in the queue/);
    expect(fix).toMatch(/same deltatune version/);
    const job = (await queue.getJob('old-cell'))!;
    expect(await job.getState()).toBe('waiting');
    expect(job.attemptsMade).toBe(0);
    expect(await conn.hget(REFUSALS_KEY, workerName(w))).toMatch(/old-cell: it was queued by deltatune 0\.0\.1-old/);
    await queue.close();
    await conn.quit();
  });

  it('a worker whose copy of the dataset file differs refuses, and the collector shows the refusal', async () => {
    const data = join(tmp, 'tiny.csv');
    const lines = [
      'text,label',
      ...Array.from({ length: 40 }, (_, i) => `message number ${i} ${i % 2 ? 'win money now' : 'see you at lunch'},${i % 2}`),
    ];
    writeFileSync(data, lines.join('\n') + '\n');
    const grid = gridFile('file-data', {
      tasks: [{ dataset: data }],
      seeds: [0],
      budgets: [TINY],
      methods: [{ name: 'bitfit', deltas: [{ method: 'bitfit' }] }],
    });
    const url = `${redis.url}/2`;
    const collector = start(['experiment', grid, '--out', join(tmp, 'file-data'), '--queue', url]);
    await until('the cell to be enqueued', () => /1 enqueued/.test(collector.stderr));
    writeFileSync(data, lines.slice(0, 30).join('\n') + '\n');
    const w = start(['worker', '--queue', url]);
    expect(await w.exit, w.stderr).toBe(1);
    expect(errorOf(w.stderr).error).toMatch(new RegExp(`its ${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} differs from the collector's`));
    await until(
      'the collector to report the refusal',
      () => /worker \S+ refused job \S+: its .*tiny\.csv differs/.test(collector.stderr),
      15_000,
    );
    collector.child.kill('SIGTERM');
    await collector.exit;
  });

  it('an edited grid is a conflict, not mixed in; --overwrite recomputes; --workers runs local workers alongside', async () => {
    const url = `${redis.url}/3`;
    const first = cli(['experiment', ONE(0.003), '--out', join(tmp, 'one-a'), '--queue', url, '--workers', '1']);
    expect(first.code, first.stderr).toBe(0);
    expect(collected(first.stderr)).toHaveLength(1);
    const edited = cli(['experiment', ONE(0.01), '--out', join(tmp, 'one-b'), '--queue', url]);
    expect(edited.code, edited.stderr).toBe(1);
    const { error, fix } = errorOf(edited.stderr);
    expect(error).toMatch(
      /1 cell is already in the queue at redis:\/\/127\.0\.0\.1:\d+\/3 with other settings \(first: bitfit__spam__seed0__short, completed: it was queued with other settings\)/,
    );
    expect(fix).toMatch(/--overwrite.*\/4/);
    const overwritten = cli(['experiment', ONE(0.01), '--out', join(tmp, 'one-b'), '--queue', url, '--workers', '1', '--overwrite']);
    expect(overwritten.code, overwritten.stderr).toBe(0);
    const [a] = rows(join(tmp, 'one-a'));
    const [b] = rows(join(tmp, 'one-b'));
    expect(JSON.parse(String(b.spec)).budget.learningRate).toBe(0.01);
    expect(JSON.parse(String(a.spec)).budget.learningRate).toBe(0.003);
    expect(b.testLoss).not.toBe(a.testLoss);
  });

  it('unreachable, or not a Redis URL: exit 1, one line naming it, and a fix', async () => {
    const port = await freePort();
    const started = Date.now();
    const refused = cli(['experiment', ONE(0.003), '--out', join(tmp, 'nowhere'), '--queue', `redis://127.0.0.1:${port}`]);
    expect(refused.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(errorOf(refused.stderr).error).toMatch(
      new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/?: connection refused`),
    );
    expect(errorOf(refused.stderr).fix).toMatch(new RegExp(`redis-server --port ${port}`));
    const worker = cli(['worker', '--queue', `redis://127.0.0.1:${port}`]);
    expect(worker.code).toBe(1);
    expect(errorOf(worker.stderr).error).toMatch(/connection refused/);
    for (const [url, what] of [
      ['http://127.0.0.1:6379', /is a http: URL/],
      ['redis://127.0.0.1:6379/cells', /the only path a Redis URL takes is a database number/],
      ['redis://127.0.0.1:6379/0?tls=true', /\?tls, which deltatune does not read/],
    ] as const) {
      const r = cli(['worker', '--queue', url]);
      expect(r.code, url).toBe(1);
      expect(errorOf(r.stderr).error, url).toMatch(what);
      expect(errorOf(r.stderr).fix, url).toMatch(/--queue redis:\/\/127\.0\.0\.1:6379/);
    }
    const bare = cli(['experiment', ONE(0.003), '--out', join(tmp, 'bare'), '--queue', 'localhost:6379']);
    expect(bare.code).toBe(1);
    expect(errorOf(bare.stderr)).toEqual({
      error: 'error: --queue localhost:6379 has no redis:// in front',
      fix: '  fix: write it as a URL: --queue redis://localhost:6379',
    });
    const zero = cli(['experiment', ONE(0.003), '--workers', '0']);
    expect(zero.code).toBe(1);
    expect(errorOf(zero.stderr).error).toMatch(/--workers 0 runs no cell without --queue/);
    const noQueue = cli(['worker']);
    expect(noQueue.code).toBe(1);
    expect(errorOf(noQueue.stderr).error).toMatch(/needs --queue/);
    // TLS spoken to a plain port: named as such.
    const tlsToPlain = cli(['worker', '--queue', redis.url.replace('redis://', 'rediss://')]);
    expect(tlsToPlain.code).toBe(1);
    expect(errorOf(tlsToPlain.stderr).error).toMatch(/no answer to the TLS handshake within 5 s/);
    expect(errorOf(tlsToPlain.stderr).fix).toMatch(new RegExp(`the port may not speak TLS: try redis://127\\.0\\.0\\.1:${redis.port}`));
  });
});

describe.skipIf(missing)('a Redis with a password, and one with TLS', () => {
  it('password: missing and wrong are named (the password never printed); right runs the grid', async () => {
    const redis = await startRedis({ password: 's3cret-pw' });
    try {
      const bare = `redis://127.0.0.1:${redis.port}`;
      const none = cli(['experiment', ONE(0.003), '--out', join(tmp, 'pw-none'), '--queue', bare]);
      expect(none.code).toBe(1);
      expect(errorOf(none.stderr).error).toMatch(/needs a password/);
      expect(errorOf(none.stderr).fix).toMatch(new RegExp(`redis://:PASSWORD@127\\.0\\.0\\.1:${redis.port}/0`));
      const wrong = cli(['worker', '--queue', `redis://:not-it@127.0.0.1:${redis.port}`]);
      expect(wrong.code).toBe(1);
      expect(errorOf(wrong.stderr).error).toMatch(/redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/? refused the user name or password/);
      expect(wrong.stderr).not.toMatch(/not-it/);
      const right = cli(['experiment', ONE(0.003), '--out', join(tmp, 'pw-right'), '--queue', redis.url, '--workers', '1']);
      expect(right.code, right.stderr).toBe(0);
      expect(right.stderr).not.toMatch(/s3cret-pw/);
      expect(rows(join(tmp, 'pw-right'))).toHaveLength(1);
    } finally {
      await redis.stop();
    }
  });

  it('TLS (rediss://): an untrusted certificate is named with the fix; trusted through NODE_EXTRA_CA_CERTS it runs', async () => {
    const redis = await startRedis({ tls: true });
    try {
      const untrusted = cli(['worker', '--queue', redis.url]);
      expect(untrusted.code).toBe(1);
      expect(errorOf(untrusted.stderr).error).toMatch(/TLS certificate is not trusted/);
      expect(errorOf(untrusted.stderr).fix).toMatch(/NODE_EXTRA_CA_CERTS/);
      const trusted = cli(['experiment', ONE(0.003), '--out', join(tmp, 'tls'), '--queue', redis.url, '--workers', '1'], {
        NODE_EXTRA_CA_CERTS: redis.caFile,
      });
      expect(trusted.code, trusted.stderr).toBe(0);
      const [row] = rows(join(tmp, 'tls'));
      const here = cli(['experiment', ONE(0.003), '--out', join(tmp, 'tls-local')]);
      expect(here.code, here.stderr).toBe(0);
      const [plain] = rows(join(tmp, 'tls-local'));
      expect(comparable(row)).toEqual(comparable(plain));
    } finally {
      await redis.stop();
    }
  });
});
