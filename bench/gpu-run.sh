#!/usr/bin/env bash
# One run on the GPU machine: deltatune on WebGPU and PyTorch + peft on the same card, same shapes,
# then a side-by-side table with ratios. Prepare on the build machine first:
#   npm ci && npm run build && ../shared/gpu/pack.sh
# then, on the device:  bash .device/on-device.sh bash bench/gpu-run.sh
# Results go to $OUT (or ./bench-results) as JSON and markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench-results}
mkdir -p "$out"
size=${SIZE:-base}; batch=${BATCH:-32}; seq=${SEQ:-128}; steps=${STEPS:-10}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/card.txt" || true
# Loss agreement: the first steps of the same tiny run on wasm and on webgpu.
for b in wasm webgpu; do
  node packages/cli/dist/bin.js train --backend "$b" --model use-lite --dataset spam --method lora --opt r=8 \
    --steps 5 --eval-every 0 --batch-size 8 --max-length 32 --limit-train 64 --limit-validation 16 --limit-test 16 \
    --seed 1 --out "$out/agree-$b" --json > "$out/agree-$b.json"
done
node -e '
const fs = require("fs"); const d = process.argv[1];
const h = (b) => JSON.parse(fs.readFileSync(`${d}/agree-${b}/metrics.json`, "utf8")).history.map((x) => x.loss);
const [a, g] = [h("wasm"), h("webgpu")];
const diff = Math.max(...a.map((x, i) => Math.abs(x - g[i])));
console.log(JSON.stringify({ wasm: a, webgpu: g, maxAbsDiff: diff }));
fs.writeFileSync(`${d}/agreement.json`, JSON.stringify({ wasm: a, webgpu: g, maxAbsDiff: diff }, null, 2));
' "$out"
# Each fused kernel against its plain-ops reference at the same shapes: which kernels pay on this card.
node bench/kernels.mjs --backend webgpu --batch "$batch" --seq "$seq" --out "$out/kernels.json" > "$out/kernels.md" || echo "kernel table failed"
# Each workload twice: deltatune's fused kernels, and plain tfjs ops (the issue-12 baseline).
node packages/cli/dist/bin.js bench --backend webgpu --size "$size" --batch "$batch" --seq "$seq" --steps "$steps" --fused both --out "$out/deltatune.json" --json > /dev/null
# If the PyTorch side fails, keep going: deltatune's figures still make the table (PyTorch columns NaN).
python3 bench/pytorch_peft.py --size "$size" --batch "$batch" --seq "$seq" --steps "$((steps * 2))" > "$out/pytorch.json" 2> "$out/pytorch.err" \
  || { echo "PyTorch side failed: $(tail -1 "$out/pytorch.err")"; echo '{"card": "unknown", "rows": []}' > "$out/pytorch.json"; }
node -e '
const fs = require("fs"); const d = process.argv[1];
const ours = JSON.parse(fs.readFileSync(`${d}/deltatune.json`, "utf8"));
const theirs = JSON.parse(fs.readFileSync(`${d}/pytorch.json`, "utf8"));
const by = Object.fromEntries(theirs.rows.map((r) => [r.workload, r]));
const lines = ["| workload | fused | deltatune ms/step | deltatune host ms/step | PyTorch ms/step | deltatune tokens/s | PyTorch tokens/s | ratio (ours/theirs tokens/s) | dispatches/step | peak MiB (ours / theirs) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"];
for (const r of ours.rows) {
  const t = by[r.workload] || {};
  lines.push(`| ${r.workload} | ${r.fused ? "yes" : "no"} | ${r.msPerStep.toFixed(1)} | ${r.hostMsPerStep.toFixed(1)} | ${(t.msPerStep ?? NaN).toFixed(1)} | ${r.tokensPerSecond.toFixed(0)} | ${(t.tokensPerSecond ?? NaN).toFixed(0)} | ${(r.tokensPerSecond / t.tokensPerSecond).toFixed(3)} | ${r.dispatchesPerStep} | ${(r.peakBytes / 2 ** 20).toFixed(0)} / ${((t.peakBytes ?? NaN) / 2 ** 20).toFixed(0)} |`);
}
const md = `card: ${theirs.card}; BERT-${ours.size}, batch ${ours.batch} x ${ours.seq}; ${ours.date}\n\n` + lines.join("\n") + "\n";
fs.writeFileSync(`${d}/side-by-side.md`, md);
console.log(md);
' "$out"
