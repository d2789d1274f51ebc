// One command, both sides, same machine and shape: a BERT-small (4 layers, hidden 256) training
// step at batch 32 x 128, LoRA r=8 on query/value and full fine-tuning, deltatune on wasm beside
// plain PyTorch (bench/torch_cpu_bert.py, OpenBLAS), both on --threads threads (default 1). Also
// prints how much of deltatune's step is matrix products (its profiled step's BatchMatMul time).
// Needs a build (npm run build) and Debian's PyTorch: apt-get install python3-torch libopenblas0-pthread
//   node bench/cpu-compare.mjs [--steps 6] [--threads 1] [--json docs/results/cpu-compare.json]
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '6' },
    threads: { type: 'string', default: '1' },
    json: { type: 'string' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});
const workloads = ['lora', 'full'];

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    console.error(`error: ${cmd} ${args.join(' ')} exited ${r.status ?? r.error?.message}\n${r.stderr}`);
    process.exit(1);
  }
  return r.stdout;
}

if (spawnSync(values.python, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) {
  console.error(`error: ${values.python} cannot import torch\n  fix: apt-get install python3-torch libopenblas0-pthread`);
  process.exit(1);
}

const rows = [];
for (const workload of workloads) {
  // Interleaved, so both sides see the same machine load.
  const ours = JSON.parse(
    run(process.execPath, [
      join(ROOT, 'packages/cli/dist/bin.js'),
      ...['bench', '--backend', 'wasm', '--size', 'small', '--batch', '32', '--seq', '128'],
      ...['--steps', values.steps, '--warmup', '2', '--methods', workload, '--threads', values.threads, '--json'],
    ]),
  ).rows[0];
  const torch = JSON.parse(
    run(values.python, [
      join(ROOT, 'bench/torch_cpu_bert.py'),
      '--threads',
      values.threads,
      '--size',
      'small',
      '--workload',
      workload,
      '--steps',
      values.steps,
    ])
      .trim()
      .split('\n')
      .at(-1),
  );
  const kernelMs = Object.values(ours.msByKernel).reduce((a, b) => a + b, 0);
  const matmulMs = ours.msByKernel.BatchMatMul ?? 0;
  rows.push({
    workload,
    deltatuneMsPerStep: ours.msPerStep,
    torchMsPerStep: torch.ms_per_step_median,
    speedVsTorch: torch.ms_per_step_median / ours.msPerStep,
    profiledKernelMs: kernelMs,
    matmulMs,
    stepOverMatmul: ours.msPerStep / matmulMs,
    topKernels: Object.fromEntries(
      Object.entries(ours.msByKernel)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8),
    ),
  });
}

console.log(
  `BERT-small 32 x 128, ${values.threads} thread(s) each, ${cpus()[0].model}; deltatune wasm vs PyTorch (OpenBLAS), median/mean of ${values.steps} steps`,
);
console.log('| workload | deltatune ms/step | PyTorch ms/step | deltatune / PyTorch speed | matmul ms (profiled step) | step / matmul |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.workload} | ${r.deltatuneMsPerStep.toFixed(0)} | ${r.torchMsPerStep.toFixed(0)} | ${r.speedVsTorch.toFixed(3)}x | ${r.matmulMs.toFixed(0)} | ${r.stepOverMatmul.toFixed(2)} |`,
  );
if (values.json) {
  mkdirSync(dirname(values.json), { recursive: true });
  writeFileSync(
    `${values.json}.tmp`,
    JSON.stringify({ date: new Date().toISOString(), cpu: cpus()[0].model, threads: Number(values.threads), rows }, null, 2) + '\n',
  );
  renameSync(`${values.json}.tmp`, values.json);
}
