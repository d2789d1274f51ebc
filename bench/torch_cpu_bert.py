#!/usr/bin/env python3
# Copied from this project's shared bench (../shared/bench/torch_cpu_bert.py): the PyTorch side of bench/cpu-compare.mjs.
"""PyTorch side of a CPU comparison: BERT-shaped encoder + classification head, LoRA r=8 on q,v
(or full fine-tuning), AdamW, fp32, batch x seq tokens. Plain PyTorch (Debian 1.13 has no
transformers); layer math follows BERT's eager implementation (post-LN, GELU, dropout 0.1)."""
import argparse, json, math, time
import torch
from torch import nn
import torch.nn.functional as F

class LoRALinear(nn.Module):
    def __init__(self, base, r=8, alpha=16):
        super().__init__()
        self.base = base
        self.A = nn.Parameter(torch.empty(r, base.in_features)); nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        self.s = alpha / r
        self.drop = nn.Dropout(0.0)
    def forward(self, x):
        return self.base(x) + (self.drop(x) @ self.A.t() @ self.B.t()) * self.s

class Layer(nn.Module):
    def __init__(self, h, heads, ff):
        super().__init__()
        self.h, self.nh = h, heads
        self.q, self.k, self.v, self.o = (nn.Linear(h, h) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(h, eps=1e-12), nn.LayerNorm(h, eps=1e-12)
        self.i, self.out = nn.Linear(h, ff), nn.Linear(ff, h)
        self.drop = nn.Dropout(0.1)
    def forward(self, x, mask):
        b, s, _ = x.shape; d = self.h // self.nh
        sp = lambda t: t.view(b, s, self.nh, d).transpose(1, 2)
        q, k, v = sp(self.q(x)), sp(self.k(x)), sp(self.v(x))
        a = (q @ k.transpose(-1, -2)) / math.sqrt(d) + mask
        a = self.drop(a.softmax(-1))
        c = (a @ v).transpose(1, 2).reshape(b, s, self.h)
        x = self.ln1(x + self.drop(self.o(c)))
        return self.ln2(x + self.drop(self.out(F.gelu(self.i(x)))))

class Bert(nn.Module):
    def __init__(self, h, L, heads, ff, vocab=30522, pos=512):
        super().__init__()
        self.we, self.pe, self.te = nn.Embedding(vocab, h), nn.Embedding(pos, h), nn.Embedding(2, h)
        self.ln = nn.LayerNorm(h, eps=1e-12); self.drop = nn.Dropout(0.1)
        self.layers = nn.ModuleList(Layer(h, heads, ff) for _ in range(L))
        self.pool = nn.Linear(h, h); self.cls = nn.Linear(h, 2)
    def forward(self, ids, am):
        s = ids.shape[1]
        x = self.drop(self.ln(self.we(ids) + self.pe(torch.arange(s))[None] + self.te(torch.zeros_like(ids))))
        mask = (1.0 - am[:, None, None, :].float()) * -1e4
        for l in self.layers: x = l(x, mask)
        return self.cls(self.drop(torch.tanh(self.pool(x[:, 0]))))

SIZES = {"small": (256, 4, 4, 1024), "base": (768, 12, 12, 3072)}
p = argparse.ArgumentParser()
p.add_argument("--size", default="small"); p.add_argument("--batch", type=int, default=32)
p.add_argument("--seq", type=int, default=128); p.add_argument("--steps", type=int, default=5)
p.add_argument("--warmup", type=int, default=1); p.add_argument("--threads", type=int, default=2)
p.add_argument("--workload", default="lora")
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
m = Bert(*SIZES[a.size])
if a.workload == "lora":
    for prm in m.parameters(): prm.requires_grad_(False)
    for l in m.layers: l.q, l.v = LoRALinear(l.q), LoRALinear(l.v)
    for prm in list(m.cls.parameters()) + list(m.pool.parameters()): prm.requires_grad_(True)
params = [q for q in m.parameters() if q.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4)
ids = torch.randint(0, 30522, (a.batch, a.seq)); am = torch.ones(a.batch, a.seq, dtype=torch.long)
y = torch.randint(0, 2, (a.batch,))
m.train(); times = []
for i in range(a.warmup + a.steps):
    t = time.perf_counter()
    loss = F.cross_entropy(m(ids, am), y); opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step(); loss.item()
    if i >= a.warmup: times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({"torch": torch.__version__, "threads": a.threads, "size": a.size, "workload": a.workload,
                  "trainable": sum(q.numel() for q in params), "ms_per_step_median": times[len(times)//2],
                  "tokens_per_s": a.batch * a.seq / (times[len(times)//2] / 1000)}))
