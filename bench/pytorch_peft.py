#!/usr/bin/env python3
"""The PyTorch + peft side of `deltatune bench`: the same workloads on the same model shape.

BERT (random init from a config; base = bert-base-uncased's shape) with a sequence-classification
head, batch x seq tokens, AdamW, fp32. Workloads: full fine-tuning, LoRA (r=8, alpha=16, query/value),
bottleneck adapter (Houlsby placement, reduction 16: hand-written, since PEFT has none), BitFit (all
biases + layer norms) and prefix tuning (20 virtual tokens). Prints one JSON object (rows like
deltatune's) on stdout.

    python3 bench/pytorch_peft.py --size base --batch 32 --seq 128 --steps 20 --device cuda
"""
import argparse
import json
import time

import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

SIZES = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256, vocab_size=1000),
}


class Adapter(nn.Module):
    def __init__(self, hidden, reduction=16):
        super().__init__()
        m = max(1, round(hidden / reduction))
        self.down = nn.Linear(hidden, m)
        self.up = nn.Linear(m, hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return x + self.up(torch.relu(self.down(x)))


def add_houlsby_adapters(model):
    """Adapters after attention.output.dense and output.dense, before the residual + LayerNorm."""
    params = []
    for layer in model.bert.encoder.layer:
        for dense_owner in (layer.attention.output, layer.output):
            adapter = Adapter(model.config.hidden_size).to(next(model.parameters()).device)
            dense = dense_owner.dense
            dense_owner.dense = nn.Sequential(dense, adapter)
            params += list(adapter.parameters())
    return params


def build(workload, config, device):
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).to(device)
    head = list(model.classifier.parameters())
    if workload == "full":
        return model, list(model.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head:
        p.requires_grad_(True)
    if workload == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"], modules_to_save=["classifier"]))
    elif workload == "prefix":
        from peft import PrefixTuningConfig, get_peft_model, TaskType
        model = get_peft_model(model, PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=20))
    elif workload == "adapter":
        add_houlsby_adapters(model)
    elif workload == "bitfit":
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.requires_grad_(True)
    return model, [p for p in model.parameters() if p.requires_grad]


def checkpoint_bytes(model, workload):
    if workload == "full":
        return sum(p.numel() * 4 for p in model.parameters())
    return sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="base", choices=SIZES)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--methods", default="full,lora,adapter,bitfit,prefix")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    config = BertConfig(**SIZES[args.size], num_labels=2)
    device = torch.device(args.device)
    ids = (torch.arange(args.batch * args.seq) * 7919 % config.vocab_size).view(args.batch, args.seq).to(device)
    mask = torch.ones_like(ids)
    labels = (torch.arange(args.batch) % 2).to(device)
    rows = []
    for workload in args.methods.split(","):
        model, params = build(workload, config, device)
        model.train()
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)

        def step():
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return out.loss.item()

        for _ in range(args.warmup):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t) * 1000)
        ms = sorted(times)[len(times) // 2]
        rows.append(dict(
            workload=workload,
            trainableParameters=sum(p.numel() for p in params),
            msPerStep=ms,
            tokensPerSecond=args.batch * args.seq / (ms / 1000),
            peakBytes=torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
            checkpointBytes=checkpoint_bytes(model, workload),
        ))
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps(dict(framework="pytorch+peft", torch=torch.__version__, device=str(device),
                          card=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                          size=args.size, batch=args.batch, seq=args.seq, steps=args.steps, rows=rows)))


if __name__ == "__main__":
    main()
