#!/usr/bin/python3
"""LoRA training tokens/s in PyTorch on the CPU: the peer figure for bench/finetune.ts.

The Qwen2.5-0.5B shape (hidden 896, 24 layers, 14 query / 2 key-value heads of 64, q/k/v biases,
SwiGLU 4864, vocabulary 151936, tied embeddings) written out by hand (no transformers), random
weights, frozen, in --dtype (bf16 or f32); a hand-written LoRA (A [r, K], B [N, r], scale alpha/r,
f32 parameters, PEFT's init) on all seven linear layers of every layer; next-token cross-entropy on
every position of --seqs random sequences of --seq-len tokens per step; AdamW (torch's defaults,
weight_decay 0.01) on the LoRA parameters only. No gradient checkpointing (the whole graph is kept:
more memory, less compute than qwen.ts's per-layer recomputation).

  /usr/bin/python3 scripts/torch_finetune_bench.py --dtype bf16 --threads 2 --steps 3 [--json]

Prints tokens/s over the timed steps (the first, warm-up step is not counted).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--rank", type=int, default=16)
p.add_argument("--seqs", type=int, default=2)
p.add_argument("--seq-len", type=int, default=128)
p.add_argument("--steps", type=int, default=3, help="timed steps, after one warm-up step")
p.add_argument("--layers", type=int, default=24)
p.add_argument("--json", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
D, H, KV, HD, FF, V, EPS, THETA = 896, 14, 2, 64, 4864, 151936, 1e-6, 1e6


def w(*shape, std=0.02):
    return (torch.randn(*shape) * std).to(dt)


class Lora(torch.nn.Module):
    def __init__(self, n, k, r, alpha):
        super().__init__()
        self.a = torch.nn.Parameter(torch.empty(r, k))
        torch.nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.b = torch.nn.Parameter(torch.zeros(n, r))
        self.scale = alpha / r

    def forward(self, x):
        # in f32 (the parameters' type), added to the frozen base's output
        return (x.float() @ self.a.t() @ self.b.t()) * self.scale


class Linear(torch.nn.Module):
    def __init__(self, n, k, bias=False):
        super().__init__()
        self.w = w(n, k)
        self.bias = w(n) if bias else None
        self.lora = Lora(n, k, a.rank, 2 * a.rank)

    def forward(self, x):
        return (F.linear(x, self.w, self.bias) + self.lora(x)).to(dt)


def rms(x, g):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(dt) * g


def rope(x, cos, sin):
    x1, x2 = x[..., : HD // 2], x[..., HD // 2 :]
    return x * cos + torch.cat((-x2, x1), -1) * sin


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = torch.ones(D, dtype=dt), torch.ones(D, dtype=dt)
        self.q, self.k, self.v = Linear(H * HD, D, True), Linear(KV * HD, D, True), Linear(KV * HD, D, True)
        self.o = Linear(D, H * HD)
        self.gate, self.up, self.down = Linear(FF, D), Linear(FF, D), Linear(D, FF)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = rms(x, self.n1)
        q = self.q(h).view(B, T, H, HD).transpose(1, 2)
        k = self.k(h).view(B, T, KV, HD).transpose(1, 2)
        v = self.v(h).view(B, T, KV, HD).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        s = (q @ k.transpose(-1, -2)).float() / math.sqrt(HD) + mask
        att = (torch.softmax(s, -1).to(dt) @ v).transpose(1, 2).reshape(B, T, H * HD)
        x = x + self.o(att)
        h = rms(x, self.n2)
        return x + self.down((F.silu(self.gate(h).float()) * self.up(h).float()).to(dt))


emb = w(V, D)
layers = torch.nn.ModuleList([Layer() for _ in range(a.layers)])
norm = torch.ones(D, dtype=dt)
params = [p for p in layers.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=2e-4)
T = a.seq_len
inv = 1.0 / THETA ** (torch.arange(0, HD, 2).float() / HD)
ang = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat((ang.cos(),) * 2, -1).to(dt), torch.cat((ang.sin(),) * 2, -1).to(dt)
mask = torch.full((T, T), float("-inf")).triu(1)


def step():
    ids = torch.randint(0, V, (a.seqs, T))
    x = emb[ids]
    for L in layers:
        x = L(x, cos, sin, mask)
    logits = (rms(x, norm) @ emb.t()).float()
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss)


step()
t0, c0 = time.time(), time.process_time()
for _ in range(a.steps):
    step()
secs, cpu = time.time() - t0, time.process_time() - c0
tokens = a.steps * a.seqs * T
out = {
    "engine": f"torch {torch.__version__}",
    "dtype": a.dtype,
    "threads": a.threads,
    "rank": a.rank,
    "tokens_per_step": a.seqs * T,
    "steps": a.steps,
    "seconds_per_step": secs / a.steps,
    "tokens_per_second": tokens / secs,
    # CPU time of all threads: on a busy machine wall time also counts waits for a core
    "tokens_per_cpu_second": tokens / cpu,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
}
print(json.dumps(out) if a.json else f"torch {a.dtype}, {a.threads} threads, rank {a.rank}: {out['tokens_per_second']:.2f} tokens/s, {out['tokens_per_cpu_second']:.2f} per CPU second ({out['seconds_per_step']:.1f} s per {a.seqs * T}-token step)")
