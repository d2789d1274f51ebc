#!/usr/bin/env python3
"""The PyTorch reference for `deltatune bench-llm`: the same workloads on the same model, on the CPU.

A random Llama with SmolLM2-135M's config (hidden 576, intermediate 1536, 30 layers, 9 heads / 3
key-value heads, vocabulary 49152, rope_theta 100000, RMSNorm eps 1e-5, tied embeddings; weights
normal with std 0.02, norms at 1; float32), written in plain PyTorch from the math of
transformers' modeling_llama (the structure of fixtures/llm-reference/generate.py: RMSNorm,
rotate-half RoPE, grouped-query attention, SwiGLU MLP, pre-norm residual blocks). No
transformers, no peft: Debian's python3-torch (1.13) is enough.

What it times, as bench-llm does:
  * greedy generation of each --new-tokens length from one 16-token prompt ((i*7919+11) % vocab),
    under torch.no_grad(), with a key/value cache (the prompt runs once, then one position per step;
    keys stored after RoPE, per key-value head, extended by concatenation as deltatune's cache is)
    and without (each step reruns the whole row); both compute the LM head on the last position
    only. One untimed warm-up run of each path comes first. Cached and uncached greedy ids of the
    16-token run must be identical (asserted).
    Linears are F.linear, as nn.Linear runs them (--gemv: torch.mv for a single row, which
    Debian's OpenBLAS 0.3.21 runs about 2.5x faster than its M=1 sgemm).
  * a LoRA causal-LM training step (r 8, alpha 16, on q_proj and v_proj, base frozen; A
    kaiming-uniform, B zero, as peft does) at batch 2 x 128 tokens ((i*7919) % vocab): forward,
    cross-entropy over the next tokens, backward, AdamW (lr 1e-4, weight decay 0) on the LoRA
    parameters; 1 warm-up step, then 3 timed steps. Memory, two ways: "peak tensor memory" (what
    bench-llm reports: tfjs's peak of all live tensor bytes, weights included) is the bytes of the
    tensors alive before a step (weights, LoRA, AdamW state, ids) plus the peak of the bytes
    allocated during one more, untimed step as torch.profiler(profile_memory=True) records them;
    and the process's peak-RSS growth over the timed steps (VmHWM, reset through
    /proc/self/clear_refs, minus VmRSS before; resource.getrusage's ru_maxrss where that reset is
    not allowed).

Threads: deltatune's wasm backend is single-threaded, so the comparable figure is PyTorch on one
thread. Run it under OMP_NUM_THREADS=1: that fixes both torch's intra-op pool and OpenBLAS's
(which Debian's torch calls for matmuls and which reads the variable once, at load; torch's
set_num_threads does not reach it). The script prints the thread counts it ran with; without
the variable you get the machine's default. OpenBLAS's kernels: see --openblas-core (Debian's
OpenBLAS 0.3.21 mistakes CPUs newer than it for a Prescott; the script then asks for the kernels
the CPU's flags allow, and prints which it ran with).

    OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_llm.py --json /tmp/torch-llm.json
    OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_llm.py --new-tokens 16,64 --no-cache-up-to 64 --layers 4
"""
import argparse
import ctypes
import datetime
import json
import math
import os
import platform
import resource
import sys
import time


def _openblas_coretype():
    """OPENBLAS_CORETYPE to set before torch loads OpenBLAS (None: leave its own detection alone).

    Debian 12's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know CPUs newer than it (e.g. Sapphire /
    Emerald Rapids, family 6 model 143 / 207) and falls back to its Prescott (SSE3) kernels, about
    4x slower at sgemm. With --openblas-core auto (the default) the script picks the kernels the
    CPU's flags allow: SkylakeX with AVX-512, Haswell with AVX2 + FMA. An OPENBLAS_CORETYPE
    already in the environment wins; --openblas-core none keeps OpenBLAS's own choice.
    """
    want = "auto"
    for i, arg in enumerate(sys.argv):
        if arg == "--openblas-core" and i + 1 < len(sys.argv):
            want = sys.argv[i + 1]
        elif arg.startswith("--openblas-core="):
            want = arg.split("=", 1)[1]
    if "OPENBLAS_CORETYPE" in os.environ or want == "none":
        return None
    if want != "auto":
        return want
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return None
    if {"avx512f", "avx512dq", "avx512bw", "avx512vl"} <= set(flags):
        return "SkylakeX"
    if {"avx2", "fma"} <= set(flags):
        return "Haswell"
    return None


_CORE = _openblas_coretype()
if _CORE:
    os.environ["OPENBLAS_CORETYPE"] = _CORE  # read once, when torch loads libopenblas below

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SMOLLM2_135M_CONFIG = dict(
    hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
    vocab_size=49152, rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
)


# --- the model -------------------------------------------------------------------------------

def random_llama(cfg, seed=0):
    """Weights named as a Hugging Face checkpoint holds them: normal(0, 0.02), norms at 1."""
    g = torch.Generator().manual_seed(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = H // cfg["num_attention_heads"]
    q, kv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.02
    W = {"model.embed_tokens.weight": r(V, H)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        W[f"{p}.input_layernorm.weight"] = torch.ones(H)
        W[f"{p}.self_attn.q_proj.weight"] = r(q, H)
        W[f"{p}.self_attn.k_proj.weight"] = r(kv, H)
        W[f"{p}.self_attn.v_proj.weight"] = r(kv, H)
        W[f"{p}.self_attn.o_proj.weight"] = r(H, q)
        W[f"{p}.post_attention_layernorm.weight"] = torch.ones(H)
        W[f"{p}.mlp.gate_proj.weight"] = r(I, H)
        W[f"{p}.mlp.up_proj.weight"] = r(I, H)
        W[f"{p}.mlp.down_proj.weight"] = r(H, I)
    W["model.norm.weight"] = torch.ones(H)
    if not cfg["tie_word_embeddings"]:
        W["lm_head.weight"] = r(V, H)
    return W


def rope_tables(cfg, length):
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.arange(length).float()[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rms(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Model:
    def __init__(self, cfg, W, max_positions, gemv=False):
        self.cfg, self.W, self.gemv = cfg, W, gemv
        self.cos, self.sin = rope_tables(cfg, max_positions)
        self.lora = {}  # module name -> (A [r, in], B [out, r], scale)

    def linear(self, x, w):
        if self.gemv and x.numel() == x.shape[-1]:  # one row: matrix-vector product (see --gemv)
            return torch.mv(w, x.reshape(-1)).view(*x.shape[:-1], w.shape[0])
        return F.linear(x, w)

    def lin(self, name, x):
        y = self.linear(x, self.W[name + ".weight"])
        if name in self.lora:
            A, B, scale = self.lora[name]
            y = y + F.linear(F.linear(x, A), B) * scale
        return y

    def forward(self, ids, cache=None, last_only=False):
        """Logits [b, s or 1, vocab] for ids at positions cache-length.. (all rows unpadded)."""
        cfg, W = self.cfg, self.W
        b, s = ids.shape
        H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd, rep, eps = H // nh, nh // nkv, cfg["rms_norm_eps"]
        past = cache.length if cache is not None else 0
        T = past + s
        cos, sin = self.cos[past:T], self.sin[past:T]
        # Grouped-query attention without repeating keys: query head g*rep+j uses key-value head g,
        # so the queries of a group are stacked as rep*s rows; row r is position past + r % s.
        bias = None
        if s > 1:
            qpos = past + torch.arange(rep * s) % s
            bias = torch.zeros(rep * s, T).masked_fill(torch.arange(T)[None, :] > qpos[:, None], float("-inf"))
        x = W["model.embed_tokens.weight"][ids]
        for i in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{i}"
            h = rms(x, W[f"{p}.input_layernorm.weight"], eps)
            q = self.lin(f"{p}.self_attn.q_proj", h).view(b, s, nh, hd).transpose(1, 2)
            k = self.lin(f"{p}.self_attn.k_proj", h).view(b, s, nkv, hd).transpose(1, 2)
            v = self.lin(f"{p}.self_attn.v_proj", h).view(b, s, nkv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                k, v = cache.extend(i, k, v)
            a = q.reshape(b, nkv, rep * s, hd) @ k.transpose(2, 3) * hd ** -0.5
            if bias is not None:
                a = a + bias
            c = (a.softmax(-1) @ v).view(b, nh, s, hd).transpose(1, 2).reshape(b, s, nh * hd)
            x = x + self.lin(f"{p}.self_attn.o_proj", c)
            h = rms(x, W[f"{p}.post_attention_layernorm.weight"], eps)
            x = x + self.lin(f"{p}.mlp.down_proj", F.silu(self.lin(f"{p}.mlp.gate_proj", h)) * self.lin(f"{p}.mlp.up_proj", h))
        if cache is not None:
            cache.length = T
        if last_only:
            x = x[:, -1:]
        x = rms(x, W["model.norm.weight"], eps)
        head = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
        return self.linear(x, head)


class KeyValueCache:
    """Per layer [batch, kv_heads, length, head_dim] keys (after RoPE) and values, grown by concatenation."""

    def __init__(self, layers):
        self.keys, self.values, self.length = [None] * layers, [None] * layers, 0

    def extend(self, i, k, v):
        if self.keys[i] is not None:
            k, v = torch.cat((self.keys[i], k), dim=2), torch.cat((self.values[i], v), dim=2)
        self.keys[i], self.values[i] = k, v
        return k, v


@torch.no_grad()
def generate(model, prompt, new_tokens, use_cache):
    """Greedy ids; with the cache the prompt runs once and each later step feeds one position."""
    ids, out = list(prompt), []
    cache = KeyValueCache(model.cfg["num_hidden_layers"]) if use_cache else None
    feed = torch.tensor([ids])
    for _ in range(new_tokens):
        logits = model.forward(feed, cache, last_only=True)
        nxt = int(logits[0, -1].argmax())
        out.append(nxt)
        ids.append(nxt)
        feed = torch.tensor([[nxt]]) if use_cache else torch.tensor([ids])
    return out


# --- the LoRA SFT step -----------------------------------------------------------------------

def attach_lora(model, r=8, alpha=16, targets=("q_proj", "v_proj")):
    params = []
    for i in range(model.cfg["num_hidden_layers"]):
        for t in targets:
            name = f"model.layers.{i}.self_attn.{t}"
            out_f, in_f = model.W[name + ".weight"].shape
            A = torch.empty(r, in_f)
            torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))
            A.requires_grad_(True)
            B = torch.zeros(out_f, r, requires_grad=True)
            model.lora[name] = (A, B, alpha / r)
            params += [A, B]
    return params


def rss_kib():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def profiled_peak_new_bytes(fn):
    """Peak of bytes allocated (minus freed) during fn, from torch.profiler's memory events; None if unavailable."""
    try:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    except Exception as e:  # an older or different profiler
        print(f"  (no profiler memory events: {e})", file=sys.stderr)
        return None
    live = peak = 0
    for e in sorted(events, key=lambda e: e.start_us()):
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def sft_step(model, batch, seq, steps):
    params = attach_lora(model)
    V = model.cfg["vocab_size"]
    ids = torch.tensor([(i * 7919) % V for i in range(batch * seq)]).view(batch, seq)
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    def step():
        logits = model.forward(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss)

    try:
        step()  # warm-up (also creates AdamW's state)
        peak_reset = reset_peak_rss()
        rss_before = rss_kib()["VmRSS"]
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        ms_per_step = 1000 * (time.perf_counter() - start) / steps
        if peak_reset:
            rss_growth, rss_how = (rss_kib()["VmHWM"] - rss_before) * 1024, "VmHWM after /proc/self/clear_refs, minus VmRSS before"
        else:
            rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss_before) * 1024
            rss_how = "getrusage ru_maxrss growth (a lower bound: the earlier peak counts against it)"
        # Tensors alive going into a step: every weight, the LoRA factors, AdamW's moments, the ids.
        alive = {}
        for t in list(model.W.values()) + params + [ids] + [s for st in opt.state.values() for s in st.values() if torch.is_tensor(s)]:
            alive[t.data_ptr()] = t.numel() * t.element_size()
        new_peak = profiled_peak_new_bytes(step)
        return {
            "batch": batch, "seq": seq, "trainableParameters": sum(p.numel() for p in params),
            "msPerStep": ms_per_step, "tokensPerSecond": batch * seq / (ms_per_step / 1000), "loss": loss,
            "peakBytes": None if new_peak is None else sum(alive.values()) + new_peak,
            "peakBytesHow": "tensor bytes alive before a step + torch.profiler's peak of bytes allocated during one (untimed) step",
            "peakRssGrowthBytes": rss_growth, "peakRssGrowthHow": rss_how,
        }
    finally:
        model.lora.clear()


# --- the benchmark ---------------------------------------------------------------------------

def blas_info():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return {"blas": "OpenBLAS", "blasThreads": lib.openblas_get_num_threads(), "blasCore": lib.openblas_get_corename().decode()}
    except (OSError, AttributeError):
        return {"blas": "unknown"}


def table(headers, rows):
    """bench-llm's layout: first column left-aligned, the rest right-aligned, two spaces apart."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))
    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--new-tokens", default="16,64,256", help="generation lengths to time (comma list)")
    ap.add_argument("--prompt", type=int, default=16, help="prompt tokens before generation")
    ap.add_argument("--no-cache-up-to", type=int, default=256, help="time generation without the cache only up to this many new tokens")
    ap.add_argument("--sft-batch", type=int, default=2)
    ap.add_argument("--sft-seq", type=int, default=128)
    ap.add_argument("--sft-steps", type=int, default=3, help="timed SFT steps (0: skip the SFT step)")
    ap.add_argument("--layers", type=int, help="layers of the random model (SmolLM2-135M's 30 by default)")
    ap.add_argument("--json", metavar="FILE", help="where the results are written")
    ap.add_argument("--gemv", action="store_true",
                    help="run one-row linears (cached decoding) as torch.mv rather than F.linear, which OpenBLAS 0.3.21 runs as a slower M=1 sgemm")
    ap.add_argument("--openblas-core", default="auto", metavar="CORE",
                    help="OpenBLAS kernels: auto (from the CPU's flags, where OPENBLAS_CORETYPE is unset), none (OpenBLAS's own detection) or a core name")
    a = ap.parse_args()
    lengths = [int(s) for s in a.new_tokens.split(",")]
    if any(n < 1 for n in lengths):
        ap.error(f"--new-tokens {a.new_tokens} is not a list of counts")

    cfg = dict(SMOLLM2_135M_CONFIG)
    if a.layers:
        cfg["num_hidden_layers"] = a.layers
    threads = {"ompNumThreads": os.environ.get("OMP_NUM_THREADS"), "openblasCoretype": os.environ.get("OPENBLAS_CORETYPE"),
               "openblasCoretypeSetByScript": bool(_CORE), "torchThreads": torch.get_num_threads(),
               "torchInteropThreads": torch.get_num_interop_threads(), **blas_info()}
    log = lambda s: print(s, file=sys.stderr, flush=True)
    log(f"  torch {torch.__version__}, threads: {threads}")
    if threads["torchThreads"] != 1 or threads.get("blasThreads", 1) != 1:
        log("  note: not single-threaded; run under OMP_NUM_THREADS=1 for the figure beside deltatune's wasm")
    if threads.get("blasCore") in ("Prescott", "Core2", "Penryn", "Nehalem", "Dunnington", "Atom"):
        log(f"  note: OpenBLAS runs its {threads['blasCore']} kernels (no AVX): see --openblas-core")
    log("  building the random model...")
    W = random_llama(cfg, 0)
    parameters = sum(t.numel() for t in W.values())
    model = Model(cfg, W, a.prompt + max(lengths) + max(a.sft_seq, 1), gemv=a.gemv)
    V = cfg["vocab_size"]
    prompt = [(i * 7919 + 11) % V for i in range(a.prompt)]

    # Untimed warm-up of both paths; then the check that they agree.
    generate(model, prompt, 4, True)
    generate(model, prompt, 2, False)
    check_n = min(16, max(lengths))
    cached, uncached = generate(model, prompt, check_n, True), generate(model, prompt, check_n, False)
    assert cached == uncached, f"cached and uncached greedy ids differ:\n{cached}\n{uncached}"
    log(f"  cached and uncached greedy ids agree for {check_n} tokens")

    generation = []
    for cache in (True, False):
        for n in lengths:
            if not cache and n > a.no_cache_up_to:
                continue
            start = time.perf_counter()
            ids = generate(model, prompt, n, cache)
            seconds = time.perf_counter() - start
            assert len(ids) == n
            generation.append({"newTokens": n, "cache": cache, "seconds": seconds, "tokensPerSecond": n / seconds, "msPerToken": 1000 * seconds / n})
            log(f"  {'cache   ' if cache else 'no cache'} {n} tokens: {seconds:.2f} s, {n / seconds:.1f} tokens/s")

    sft = sft_step(model, a.sft_batch, a.sft_seq, a.sft_steps) if a.sft_steps > 0 else None
    mib = lambda b: "n/a" if b is None else f"{b / 2 ** 20:.0f} MiB"
    if sft:
        log(f"  LoRA SFT step: {sft['msPerStep']:.0f} ms, {sft['tokensPerSecond']:.0f} tokens/s, peak {mib(sft['peakBytes'])}")

    result = {
        "backend": f"pytorch {torch.__version__} cpu",
        "model": f"random Llama, SmolLM2-135M config{f' with {a.layers} layers' if a.layers else ''}",
        "parameters": parameters, "promptTokens": len(prompt),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "linears": "torch.mv for one row, F.linear otherwise" if a.gemv else "F.linear (as nn.Linear)",
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), **threads},
        "greedyCheck": {"newTokens": check_n, "identical": True},
        "generation": generation, "sft": sft,
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")

    rows = [[str(g["newTokens"]), "yes" if g["cache"] else "no", f"{g['seconds']:.2f}", f"{g['msPerToken']:.1f}", f"{g['tokensPerSecond']:.1f}"] for g in generation]
    t = threads
    print(f"torch_llm.py: {result['backend']}, {t['torchThreads']} torch thread(s), {t.get('blasThreads', '?')} {t['blas']} thread(s)"
          f"{' (' + t['blasCore'] + ' kernels)' if t.get('blasCore') else ''}, "
          f"{'torch.mv for one-row linears, ' if a.gemv else ''}{result['model']} ({parameters / 1e6:.1f}M parameters), prompt {len(prompt)} tokens\n")
    print(table(["new tokens", "KV cache", "seconds", "ms/token", "tokens/s"], rows))
    if sft:
        print(f"\nLoRA SFT step (r 8, q_proj+v_proj, {sft['trainableParameters']} trainable), batch {sft['batch']} x {sft['seq']}: "
              f"{sft['msPerStep']:.0f} ms/step, {sft['tokensPerSecond']:.0f} tokens/s, peak tensor memory {mib(sft['peakBytes'])} "
              f"(peak RSS growth {mib(sft['peakRssGrowthBytes'])})")


if __name__ == "__main__":
    main()
