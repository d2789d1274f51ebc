// Queue load figure: one grid run through Redis + BullMQ with 1, 2 and 4 `deltatune worker`
// processes on this machine, beside the same grid run locally (`experiment --workers N`, the
// reference: no queue) in the same run. Reports cells/minute and the queue's overhead per cell:
//   in-job:  a job's time on its worker (BullMQ processedOn -> finishedOn) minus the cell's own
//            `seconds` (train + evaluate), i.e. fetching the job, checking it, storing the result;
//   pickup:  the gap between a worker finishing one job and starting its next.
// Needs redis-server (apt-get install redis-server) and a build (npm run build).
//   node bench/queue/load.mjs [--cells 16] [--workers 1,2,4] [--steps 20] [--json docs/results/queue-load.json]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openQueue, openRedis, parseQueueUrl } from '@deltatune/queue';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/bin.js');
const { values } = parseArgs({
  options: {
    cells: { type: 'string', default: '16' },
    workers: { type: 'string', default: '1,2,4' },
    steps: { type: 'string', default: '20' },
    json: { type: 'string' },
  },
});
const cells = Number(values.cells);
const workerCounts = values.workers.split(',').map(Number);
const tmp = mkdtempSync(join(tmpdir(), 'queue-load-'));

if (spawnSync('redis-server', ['--version']).status !== 0) {
  console.error('error: redis-server is not installed\n  fix: apt-get install redis-server');
  process.exit(1);
}

// Two methods x cells/2 seeds, the CLI tests' tiny spam cell (a few seconds each here).
const grid = join(tmp, 'grid.json');
writeFileSync(
  grid,
  JSON.stringify({
    name: 'queue-load',
    model: 'use-lite',
    target: 0.6,
    tasks: [{ dataset: 'spam', limits: { train: 48, validation: 16, test: 32 } }],
    seeds: Array.from({ length: Math.ceil(cells / 2) }, (_, i) => i),
    budgets: [{ name: 'tiny', steps: Number(values.steps), batchSize: 8, maxLength: 16, learningRate: 0.003, evalEvery: 5 }],
    methods: [
      { name: 'lora', deltas: [{ method: 'lora', options: { r: 2, dropout: 0 } }] },
      { name: 'bitfit', deltas: [{ method: 'bitfit' }] },
    ],
  }),
);

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve) => child.stdout.on('data', (d) => /Ready to accept/.test(String(d)) && resolve()));
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

const run = (args) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve(err) : reject(new Error(`deltatune ${args[0]} exited ${code}:\n${err}`))));
  });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function queued(workers) {
  const redis = await startRedis();
  try {
    const started = Date.now();
    const procs = Array.from({ length: workers }, () => run(['worker', '--queue', redis.url, '--exit-when-idle']));
    await run(['experiment', grid, '--out', join(tmp, `queue-${workers}`), '--queue', redis.url]);
    const wallMs = Date.now() - started;
    await Promise.all(procs);
    const conn = await openRedis(parseQueueUrl(redis.url), 'bench');
    const queue = openQueue(conn);
    const jobs = await queue.getJobs(['completed']);
    const inJob = jobs.map((j) => j.finishedOn - j.processedOn - j.returnvalue.result.seconds * 1000);
    const cellMs = jobs.map((j) => j.returnvalue.result.seconds * 1000);
    const byWorker = new Map();
    for (const j of jobs) byWorker.set(j.returnvalue.worker, [...(byWorker.get(j.returnvalue.worker) ?? []), j]);
    const pickup = [...byWorker.values()].flatMap((js) => {
      const sorted = js.sort((a, b) => a.processedOn - b.processedOn);
      return sorted.slice(1).map((j, i) => j.processedOn - sorted[i].finishedOn);
    });
    await queue.close();
    await conn.quit();
    return { wallMs, cellMs: median(cellMs), inJobMs: median(inJob), pickupMs: pickup.length ? median(pickup) : null, jobs: jobs.length };
  } finally {
    redis.stop();
  }
}

async function local(workers) {
  const started = Date.now();
  await run(['experiment', grid, '--out', join(tmp, `local-${workers}`), '--workers', String(workers)]);
  return { wallMs: Date.now() - started };
}

const rows = [];
for (const w of workerCounts) {
  const q = await queued(w);
  const l = await local(w);
  const row = {
    workers: w,
    queueCellsPerMinute: (q.jobs / q.wallMs) * 60_000,
    localCellsPerMinute: (cells / l.wallMs) * 60_000,
    queueWallS: q.wallMs / 1000,
    localWallS: l.wallMs / 1000,
    medianCellS: q.cellMs / 1000,
    medianInJobOverheadMs: q.inJobMs,
    medianPickupMs: q.pickupMs,
  };
  rows.push(row);
  console.error(JSON.stringify(row));
}

const fmt = (n, d = 1) => (n === null ? '-' : n.toFixed(d));
console.log(`queue load: ${cells} cells (USE-lite, spam, ${values.steps} steps of 8 x 16), ${cpus().length} CPUs (${cpus()[0].model})`);
console.log(
  '| workers | cells/min via queue | cells/min local (--workers) | wall s queue / local | median cell s | queue overhead in job (ms) | pickup gap (ms) |',
);
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.workers} | ${fmt(r.queueCellsPerMinute)} | ${fmt(r.localCellsPerMinute)} | ${fmt(r.queueWallS)} / ${fmt(r.localWallS)} | ${fmt(r.medianCellS, 2)} | ${fmt(r.medianInJobOverheadMs, 0)} | ${fmt(r.medianPickupMs, 0)} |`,
  );
if (values.json) {
  mkdirSync(dirname(values.json), { recursive: true });
  writeFileSync(
    `${values.json}.tmp`,
    JSON.stringify({ cells, steps: Number(values.steps), cpus: cpus().length, cpu: cpus()[0].model, rows }, null, 2) + '\n',
  );
  renameSync(`${values.json}.tmp`, values.json);
}
