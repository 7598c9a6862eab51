#!/usr/bin/python3
"""Reference LoRA losses and gradients for test/train/grad.test.ts, by PyTorch autograd.

Run with Debian's python3 (python3-torch; no transformers needed):
    /usr/bin/python3 scripts/torch_lora_grad.py            # writes test/fixtures/train/*.json.gz
    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/torch_lora_grad.py --bench HF_DIR [tokens rank threads steps float32|bfloat16]
        # PyTorch CPU's time for bench/train_step.ts's step (forward, loss everywhere, autograd)

For each tiny fixture model (test/fixtures/models/*/model.safetensors + config.json) and adapter
case, builds the model in plain torch ops, float64 (and float32 for the noise figure), with a
PEFT-style LoRA on all seven linear modules of every layer:
    y = x W^T (+ b) + scaling * (x A^T) B^T,   scaling = alpha / r, or alpha / sqrt(r) (use_rslora)
(peft/tuners/lora/layer.py, Linear.forward), and writes the summed cross-entropy over the masked
targets and its gradients w.r.t. every A and B.

The forward follows transformers' modeling_qwen2.py / modeling_qwen3.py (v4.5x): Qwen2RMSNorm
(x * rsqrt(mean(x^2) + eps) * w), rotate_half RoPE with cos/sin = cat(freqs, freqs) (YaRN:
_compute_yarn_parameters in modeling_rope_utils.py, cos/sin times attention_factor), repeat_kv
for grouped-query heads, causal softmax(q k^T / sqrt(head_dim)) v, Qwen3's q_norm / k_norm per
head before RoPE, Qwen2's q/k/v biases, SwiGLU MLP down(silu(gate(x)) * up(x)), final norm, tied
or untied lm_head.

A and B come from a small integer generator that the test repeats exactly (adapterValues in
test/train/grad.test.ts): values are multiples of 2^-31 * amp, exact in float32.
The untied case adds an lm_head.weight from the same generator (tie_word_embeddings false).
The Q8_0 case quantises every 2-D weight as ggml's quantize_row_q8_0_ref does (and as qwen.ts's
loader does with quantize: 'q8_0'), then computes on the dequantised weights.
"""
import gzip
import json
import math
import os
import struct
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']


def read_safetensors(path):
    raw = open(path, 'rb').read()
    if path.endswith('.gz'):
        raw = gzip.decompress(raw)
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        if name == '__metadata__':
            continue
        a, b = t['data_offsets']
        buf = data[a:b]
        if t['dtype'] == 'BF16':
            v = (np.frombuffer(buf, dtype='<u2').astype(np.uint32) << 16).view(np.float32)
        elif t['dtype'] == 'F16':
            v = np.frombuffer(buf, dtype='<f2').astype(np.float32)
        elif t['dtype'] == 'F32':
            v = np.frombuffer(buf, dtype='<f4')
        else:
            raise SystemExit(f'{path}: {name}: dtype {t["dtype"]} not handled')
        out[name] = v.reshape(t['shape']).copy()
    return out


def q8_0_roundtrip(w):
    """ggml quantize_row_q8_0_ref then dequantize_row_q8_0, float32 as C computes it."""
    x = w.astype(np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    idv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, np.float32(1)), np.float32(0)).astype(np.float32)
    v = (x * idv[:, None]).astype(np.float32).astype(np.float64)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)  # roundf: half away from zero
    dh = d.astype(np.float16).astype(np.float32)
    return (q.astype(np.float32) * dh[:, None]).astype(np.float32).reshape(w.shape)


def gen_values(seed, index, is_b, n, amp):
    """The adapter generator (same integers as the test): 31-bit LCG, values in [-amp, amp)."""
    s = (seed * 1000003 + index * 7919 + (104729 if is_b else 0)) & 0x7FFFFFFF
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (s / 2.0 ** 31 * 2 - 1) * amp
    return out.astype(np.float32)


def rope_inv_freq(cfg):
    dim, base = cfg['head_dim'], float(cfg.get('rope_theta', 10000.0))
    pos_freqs = base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    rs = cfg.get('rope_scaling')
    if not rs:
        return 1.0 / pos_freqs, 1.0
    assert rs.get('rope_type', rs.get('type')) == 'yarn'
    factor = rs['factor']
    orig = rs.get('original_max_position_embeddings', cfg['max_position_embeddings'])
    att = rs.get('attention_factor') or (1.0 if factor <= 1 else 0.1 * math.log(factor) + 1.0)
    beta_fast, beta_slow = rs.get('beta_fast', 32), rs.get('beta_slow', 1)

    def corr(rot):
        return (dim * math.log(orig / (rot * 2 * math.pi))) / (2 * math.log(base))

    low, high = corr(beta_fast), corr(beta_slow)
    if rs.get('truncate', True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    extra = 1 - ramp
    inv = (1.0 / (factor * pos_freqs)) * (1 - extra) + (1.0 / pos_freqs) * extra
    return inv, att


def forward_loss(cfg, W, lora, seqs, dtype):
    D, Hq, Hkv, Dh = cfg['hidden_size'], cfg['num_attention_heads'], cfg['num_key_value_heads'], cfg['head_dim']
    eps = cfg['rms_norm_eps']
    qwen3 = cfg['model_type'] == 'qwen3'
    inv_freq, att = rope_inv_freq(cfg)
    t = lambda a: torch.tensor(a, dtype=dtype)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def lin(x, layer, target, bias=False):
        p = f'model.layers.{layer}.' + ('self_attn.' if target in TARGETS[:4] else 'mlp.') + target
        y = x @ W[p + '.weight'].T
        if bias:
            y = y + W[p + '.bias']
        m = lora.get(p)
        if m is not None:
            y = y + (x @ m['A'].T) @ m['B'].T * m['scaling']
        return y

    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    total = 0
    count = 0
    for s in seqs:
        ids = torch.tensor(s['tokens'], dtype=torch.long)
        T = len(s['tokens'])
        x = W['model.embed_tokens.weight'][ids]
        freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
        emb = np.concatenate([freqs, freqs], axis=-1)
        cos, sin = t(np.cos(emb) * att), t(np.sin(emb) * att)
        mask = torch.full((T, T), float('-inf'), dtype=dtype).triu(1)
        for l in range(cfg['num_hidden_layers']):
            h = rms(x, W[f'model.layers.{l}.input_layernorm.weight'])
            bias = not qwen3
            q = lin(h, l, 'q_proj', bias).view(T, Hq, Dh)
            k = lin(h, l, 'k_proj', bias).view(T, Hkv, Dh)
            v = lin(h, l, 'v_proj', bias).view(T, Hkv, Dh)
            if qwen3:
                q = rms(q, W[f'model.layers.{l}.self_attn.q_norm.weight'])
                k = rms(k, W[f'model.layers.{l}.self_attn.k_norm.weight'])
            q = q * cos[:, None, :] + rotate_half(q) * sin[:, None, :]
            k = k * cos[:, None, :] + rotate_half(k) * sin[:, None, :]
            rep = Hq // Hkv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            sc = torch.einsum('thd,shd->hts', q, k) / math.sqrt(Dh) + mask
            o = torch.einsum('hts,shd->thd', torch.softmax(sc, dim=-1), v).reshape(T, Hq * Dh)
            x = x + lin(o, l, 'o_proj')
            h = rms(x, W[f'model.layers.{l}.post_attention_layernorm.weight'])
            x = x + lin(torch.nn.functional.silu(lin(h, l, 'gate_proj')) * lin(h, l, 'up_proj'), l, 'down_proj')
        x = rms(x, W['model.norm.weight'])
        head = W['model.embed_tokens.weight'] if cfg.get('tie_word_embeddings') else W['lm_head.weight']
        rows = [i for i in range(T - 1) if s['mask'][i + 1]]
        logits = x[rows] @ head.T
        tgt = torch.tensor([s['tokens'][i + 1] for i in rows], dtype=torch.long)
        total = total + torch.nn.functional.cross_entropy(logits, tgt, reduction='sum')
        count += len(rows)
    return total, count


def run_case(model_dir, case):
    cfg = json.load(open(os.path.join(model_dir, 'config.json')))
    cfg.setdefault('head_dim', cfg['hidden_size'] // cfg['num_attention_heads'])
    st = os.path.join(model_dir, 'model.safetensors')
    raw = read_safetensors(st if os.path.exists(st) else st + '.gz')
    if case.get('quantize') == 'q8_0':
        raw = {k: (q8_0_roundtrip(v) if v.ndim == 2 else v) for k, v in raw.items()}
    if case.get('untied_head'):
        # an untied copy: lm_head.weight from the generator (the test writes the same folder)
        u = case['untied_head']
        V, D = raw['model.embed_tokens.weight'].shape
        raw['lm_head.weight'] = gen_values(u['seed'], 0, False, V * D, u['amp']).reshape(V, D)
        cfg['tie_word_embeddings'] = False
    r, alpha, rslora = case['r'], case['alpha'], case['use_rslora']
    scaling = alpha / math.sqrt(r) if rslora else alpha / r
    mods = []
    for l in range(cfg['num_hidden_layers']):
        for tg in TARGETS:
            p = f'model.layers.{l}.' + ('self_attn.' if tg in TARGETS[:4] else 'mlp.') + tg
            N, K = raw[p + '.weight'].shape
            i = len(mods)
            mods.append({'name': p, 'A': gen_values(case['seed'], i, False, r * K, case['amp_a']).reshape(r, K),
                         'B': gen_values(case['seed'], i, True, N * r, case['amp_b']).reshape(N, r)})
    out = {}
    for dtype in (torch.float64, torch.float32):
        W = {k: torch.tensor(v.astype(np.float64), dtype=dtype) for k, v in raw.items()}
        lora = {}
        for m in mods:
            lora[m['name']] = {'A': torch.tensor(m['A'].astype(np.float64), dtype=dtype, requires_grad=True),
                               'B': torch.tensor(m['B'].astype(np.float64), dtype=dtype, requires_grad=True), 'scaling': scaling}
        loss, count = forward_loss(cfg, W, lora, case['seqs'], dtype)
        loss.backward()
        out[dtype] = (loss.item(), count, {n: (m['A'].grad.numpy().copy(), m['B'].grad.numpy().copy()) for n, m in lora.items()})
    loss64, count, g64 = out[torch.float64]
    loss32, _, g32 = out[torch.float32]
    rel32 = max(max(np.linalg.norm(g32[n][j] - g64[n][j]) / np.linalg.norm(g64[n][j]) for j in (0, 1)) for n in g64)
    short = lambda a: [float(f'{v:.7g}') for v in a.ravel()]  # 7 digits: far below the tests' 1e-4
    grads = [{'name': n, 'a': short(g64[n][0]), 'b': short(g64[n][1])} for n in g64]
    return {**case, 'scaling': scaling, 'loss': loss64, 'count': count, 'loss_f32': loss32, 'f32_rel_err': rel32, 'grads': grads}


def seqs_for(vocab, seed):
    rng = np.random.default_rng(seed)
    a = [int(v) for v in rng.integers(0, vocab, 9)]
    b = [int(v) for v in rng.integers(0, vocab, 6)]
    return [{'tokens': a, 'mask': [0, 0, 0, 1, 1, 1, 1, 1, 1]}, {'tokens': b, 'mask': [0, 1, 0, 1, 1, 1]}]


def bench(model_dir, tokens, rank, threads, steps, dtype_name):
    """One LoRA step (forward, summed loss over every position, autograd backward) on a model
    folder, as bench/train_step.ts times qwen.ts: tokens/s and CPU seconds (all threads)."""
    import resource
    import time
    torch.set_num_threads(threads)
    dtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16}[dtype_name]
    cfg = json.load(open(os.path.join(model_dir, 'config.json')))
    cfg.setdefault('head_dim', cfg['hidden_size'] // cfg['num_attention_heads'])
    W = {k: torch.from_numpy(v).to(dtype) for k, v in read_safetensors(os.path.join(model_dir, 'model.safetensors')).items()}
    lora = {}
    for l in range(cfg['num_hidden_layers']):
        for i, tg in enumerate(TARGETS):
            p = f'model.layers.{l}.' + ('self_attn.' if tg in TARGETS[:4] else 'mlp.') + tg
            N, K = W[p + '.weight'].shape
            g = torch.Generator().manual_seed(l * 7 + i)
            lora[p] = {'A': ((torch.rand(rank, K, generator=g) * 2 - 1) / math.sqrt(K)).to(dtype).requires_grad_(),
                       'B': ((torch.rand(N, rank, generator=g) * 2 - 1) * 0.01).to(dtype).requires_grad_(), 'scaling': 2.0}
    rng = np.random.default_rng(7)
    seqs = [{'tokens': [int(v) for v in rng.integers(0, cfg['vocab_size'], tokens)], 'mask': [1] * tokens}]
    for step in range(steps):
        for m in lora.values():
            m['A'].grad = m['B'].grad = None
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        loss, count = forward_loss(cfg, W, lora, seqs, dtype)
        loss.backward()
        wall, c1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
        cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        print(json.dumps({'torch': torch.__version__, 'dtype': dtype_name, 'threads': threads, 'rank': rank, 'tokens': tokens, 'step': step,
                          'stepS': round(wall, 2), 'tokensPerS': round(tokens / wall, 2), 'cpuS': round(cpu, 1), 'tokensPerCpuS': round(tokens / cpu, 2),
                          'loss': loss.item() / count, 'maxRssMiB': c1.ru_maxrss // 1024}))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--bench':
        # --bench MODEL_DIR [tokens rank threads steps dtype]: OMP_WAIT_POLICY=PASSIVE keeps idle threads from spinning
        a = sys.argv[2:] + [None] * 6
        return bench(a[0], int(a[1] or 512), int(a[2] or 16), int(a[3] or 2), int(a[4] or 2), a[5] or 'float32')
    out_dir = os.path.join(ROOT, 'test', 'fixtures', 'train')
    os.makedirs(out_dir, exist_ok=True)
    models = [('qwen2-tiny-tied', [('plain', False, None), ('rslora', True, None), ('untied', False, 'untied')]),
              ('qwen3-tiny-tied', [('plain', False, None), ('rslora', True, None), ('q8_0', False, 'q8_0')]),
              ('qwen3-tiny-yarn', [('plain', False, None)])]
    for name, cases in models:
        d = os.path.join(ROOT, 'test', 'fixtures', 'models', name)
        vocab = json.load(open(os.path.join(d, 'config.json')))['vocab_size']
        res = []
        for i, (cname, rslora, quant) in enumerate(cases):
            case = {'case': cname, 'r': 4, 'alpha': 8, 'use_rslora': rslora, 'seed': 7 + i, 'amp_a': 0.125, 'amp_b': 0.0625, 'seqs': seqs_for(vocab, 100 + i)}
            if quant == 'untied':
                case['untied_head'] = {'seed': 11, 'amp': 0.125}
            elif quant:
                case['quantize'] = quant
            r = run_case(d, case)
            print(f'{name} {cname}: loss {r["loss"]:.6f} over {r["count"]} targets, float32 vs float64 grads: rel {r["f32_rel_err"]:.2e}', file=sys.stderr)
            res.append(r)
        doc = {'model': f'test/fixtures/models/{name}', 'torch': torch.__version__, 'cases': res}
        with open(os.path.join(out_dir, f'{name}.json.gz'), 'wb') as f:
            f.write(gzip.compress(json.dumps(doc, separators=(',', ':')).encode(), mtime=0))


if __name__ == '__main__':
    main()
