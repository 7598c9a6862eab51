#!/usr/bin/env python3
"""Float64 numpy reference of the multi-token-prediction (MTP / nextn) block's draft logits for the
Qwen3.5 / Qwen3.5-MoE / Qwen3-Next GGUF files make_gguf.py writes with --mtp 1 (the math and its
sources: src/models/mtp.ts's header; ../shared/design/QWEN35.md section 8).

  python3 scripts/mtp_ref.py MODEL.gguf --tokens 1,2,3,... [--chain 3] --out PREFIX

For a text x_0..x_{T-1}: the target's final-norm hidden states h_i, then the block over the pairs
(h_i, x_{i+1}) at positions i = 0..T-2 (row i: logits for x_{i+2}), then `--chain` drafts chained as
the proposer does (row T-2+j: the pair (g, d_{j-1}) at position T-2+j, g the block's previous
normed output, d_{j-1} the argmax of the previous row). Writes PREFIX.f32 (rows [T-1+chain, V],
float32 little-endian) and PREFIX.json (tokens, drafts, shape).

Provenance: the GGUF reader, norms, RoPE, MoE and Gated DeltaNet below are copied from the team's
../shared/peer/ref_forward.py (float64; agrees with llama.cpp to ~1e-6 on these files), with its
llama.cpp activation-rounding emulation removed; the forward pass is its forward_moe_hybrid
returning hidden states, with the gated attention block factored out so the MTP block reuses it.
"""
import argparse
import json
import struct

import numpy as np

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class GGUF:
    def __init__(self, path):
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        self.pos = 0
        assert bytes(self.buf[:4]) == b"GGUF", "not a GGUF file"
        self.pos = 4
        self.version = self._scalar("<I")
        n_tensors = self._scalar("<Q")
        n_kv = self._scalar("<Q")
        self.kv = {}
        for _ in range(n_kv):
            k = self._string()
            t = self._scalar("<I")
            self.kv[k] = self._value(t)
        self.tensors = {}
        for _ in range(n_tensors):
            name = self._string()
            nd = self._scalar("<I")
            dims = [self._scalar("<Q") for _ in range(nd)]
            gtype = self._scalar("<I")
            off = self._scalar("<Q")
            self.tensors[name] = (dims, gtype, off)
        align = int(self.kv.get("general.alignment", 32))
        self.data_start = (self.pos + align - 1) // align * align

    def _scalar(self, fmt):
        n = struct.calcsize(fmt)
        v = struct.unpack(fmt, bytes(self.buf[self.pos:self.pos + n]))[0]
        self.pos += n
        return v

    def _string(self):
        n = self._scalar("<Q")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8")
        self.pos += n
        return s

    def _value(self, t):
        if t == 8:
            return self._string()
        if t == 9:
            et = self._scalar("<I")
            n = self._scalar("<Q")
            if et == 8:
                return [self._string() for _ in range(n)]
            dt = np.dtype(_SCALAR[et])
            arr = np.frombuffer(bytes(self.buf[self.pos:self.pos + n * dt.itemsize]), dtype=dt)
            self.pos += n * dt.itemsize
            return arr
        return self._scalar(_SCALAR[t])

    def get(self, name):
        """Dequantised float64 array with numpy shape = reversed GGUF dims."""
        dims, gtype, off = self.tensors[name]
        n = int(np.prod(dims))
        shape = tuple(reversed(dims))
        start = self.data_start + off
        if gtype == 0:
            x = np.frombuffer(self.buf[start:start + 4 * n].tobytes(), dtype="<f4")
        elif gtype == 1:
            x = np.frombuffer(self.buf[start:start + 2 * n].tobytes(), dtype="<f2")
        elif gtype == 8:
            nb = n // 32
            blk = np.frombuffer(self.buf[start:start + nb * 34].tobytes(),
                                dtype=[("d", "<f2"), ("qs", "i1", (32,))])
            x = blk["qs"].astype(np.float64) * blk["d"].astype(np.float64)[:, None]
        else:
            raise NotImplementedError(f"ggml type {gtype}")
        return np.asarray(x, dtype=np.float64).reshape(shape)


def mm(g, x, name):
    return x @ g.get(name).T


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_neox(x, pos, theta):
    # x: (T, n_heads, d)
    d = x.shape[-1]
    half = d // 2
    inv = theta ** (-np.arange(half, dtype=np.float64) * 2.0 / d)
    ang = pos[:, None].astype(np.float64) * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def silu(x):
    return x / (1.0 + np.exp(-x))


def softplus(x):
    return np.logaddexp(0.0, x)


def rope_neox_partial(x, pos, theta, n_rot):
    """NEOX RoPE on the first n_rot dims of each head (pairs i, i + n_rot/2), rest passed through.
    For text-only positions (t = h = w = pos) Qwen3.5's interleaved M-RoPE reduces to this."""
    return np.concatenate([rope_neox(x[..., :n_rot], pos, theta), x[..., n_rot:]], axis=-1)


def moe_ffn(g, h, b, n_used, shared):
    """Routed experts: p = softmax(router h); top-k; weights renormalised to sum 1 (llama.cpp
    hard-codes norm_w=true for qwen3moe / qwen35moe / qwen3next); SwiGLU experts.
    Shared expert (qwen35moe / qwen3next): + sigmoid(w_shexp_gate . h) * SwiGLU_shared(h)."""
    T = h.shape[0]
    logits = mm(g, h, b + "ffn_gate_inp.weight")                      # (T, E)
    pr = np.exp(logits - logits.max(axis=1, keepdims=True))
    pr /= pr.sum(axis=1, keepdims=True)
    names = [b + f"ffn_{n}_exps.weight" for n in ("gate", "up", "down")]
    gate_w, up_w, down_w = (g.get(n) for n in names)
    out = np.zeros_like(h)
    for t in range(T):
        top = np.argsort(-pr[t], kind="stable")[:n_used]
        w = pr[t, top] / pr[t, top].sum()
        hq = h[t]
        for e, we in zip(top, w):
            a = silu(gate_w[e] @ hq) * (up_w[e] @ hq)
            out[t] += we * (down_w[e] @ a)
    if shared:
        sg = 1.0 / (1.0 + np.exp(-(h @ g.get(b + "ffn_gate_inp_shexp.weight").reshape(-1))))  # (T,)
        a = mm(g, h, b + "ffn_gate_shexp.weight")
        sh = mm(g, silu(a) * mm(g, h, b + "ffn_up_shexp.weight"), b + "ffn_down_shexp.weight")
        out = out + sg[:, None] * sh
    return out


def gated_delta_net(g, h, b, arch, a, eps):
    """One Gated DeltaNet layer over T tokens from a zero state (recurrent form, one token at a time)."""
    T = h.shape[0]
    nk, nv = int(a("ssm.group_count")), int(a("ssm.time_step_rank"))
    dk = int(a("ssm.state_size"))
    dv = int(a("ssm.inner_size")) // nv
    key_dim, r = nk * dk, nv // nk
    qkv = mm(g, h, b + "attn_qkv.weight")                             # (T, 2*key_dim + nv*dv)
    z = mm(g, h, b + "attn_gate.weight").reshape(T, nv, dv)
    if arch == "qwen3next":   # ssm_ba rows: per key-head group [b_0..b_{r-1}, a_0..a_{r-1}]
        ba = mm(g, h, b + "ssm_ba.weight").reshape(T, nk, 2 * r)
        bb, aa = ba[..., :r].reshape(T, nv), ba[..., r:].reshape(T, nv)
    else:
        bb, aa = mm(g, h, b + "ssm_beta.weight"), mm(g, h, b + "ssm_alpha.weight")
    beta = 1.0 / (1.0 + np.exp(-bb))                                  # (T, nv)
    gdec = g.get(b + "ssm_a") * softplus(aa + g.get(b + "ssm_dt.bias"))  # ssm_a = -exp(A_log); g <= 0
    w = g.get(b + "ssm_conv1d.weight")                                # (C, K): w[c, K-1] hits token t
    K = w.shape[1]
    xp = np.concatenate([np.zeros((K - 1, qkv.shape[1])), qkv], axis=0)
    conv = silu(np.stack([(xp[t:t + K] * w.T).sum(axis=0) for t in range(T)]))
    q = conv[:, :key_dim].reshape(T, nk, dk)
    k = conv[:, key_dim:2 * key_dim].reshape(T, nk, dk)
    v = conv[:, 2 * key_dim:].reshape(T, nv, dv)
    q = q / np.sqrt((q * q).sum(-1, keepdims=True) + eps)            # l2norm (eps inside the sqrt)
    k = k / np.sqrt((k * k).sum(-1, keepdims=True) + eps)
    # value head j reads key head j % nk (GGUF qwen35*: V heads re-ordered to "tiled") or
    # j // r (qwen3next GGUF and HF checkpoints: "grouped", repeat_interleave)
    kh = [j % nk for j in range(nv)] if arch in ("qwen35", "qwen35moe") else [j // r for j in range(nv)]
    S = np.zeros((nv, dk, dv))
    o = np.zeros((T, nv, dv))
    for t in range(T):
        for j in range(nv):
            qj, kj = q[t, kh[j]], k[t, kh[j]]
            S[j] *= np.exp(gdec[t, j])
            delta = (v[t, j] - kj @ S[j]) * beta[t, j]
            S[j] += np.outer(kj, delta)
            o[t, j] = (qj @ S[j]) / np.sqrt(dk)
    o = rmsnorm(o, g.get(b + "ssm_norm.weight"), eps) * silu(z)       # gated RMSNorm (plain weight)
    return mm(g, o.reshape(T, nv * dv), b + "ssm_out.weight")


def gated_attention(g, h, b, pos, a, eps):
    """Gated full attention over rows h (T, H) at positions pos, causal over the rows."""
    T = h.shape[0]
    H = int(a("embedding_length"))
    nh = int(a("attention.head_count"))
    nkv = int(a("attention.head_count_kv", nh))
    hd = int(a("attention.key_length", H // nh))
    n_rot = int(a("rope.dimension_count", hd))
    theta = float(a("rope.freq_base", 10000.0))
    q = mm(g, h, b + "attn_q.weight").reshape(T, nh, 2 * hd)       # per head [q (hd), gate (hd)]
    q, gate = q[..., :hd], q[..., hd:].reshape(T, nh * hd)
    k = mm(g, h, b + "attn_k.weight").reshape(T, nkv, hd)
    v = mm(g, h, b + "attn_v.weight").reshape(T, nkv, hd)
    q = rope_neox_partial(rmsnorm(q, g.get(b + "attn_q_norm.weight"), eps), pos, theta, n_rot)
    k = rope_neox_partial(rmsnorm(k, g.get(b + "attn_k_norm.weight"), eps), pos, theta, n_rot)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    grp = nh // nkv
    o = np.empty((T, nh, hd))
    for hh in range(nh):
        kh = hh // grp
        s_ = q[:, hh, :] @ k[:, kh, :].T / np.sqrt(hd) + mask
        s_ = np.exp(s_ - s_.max(axis=1, keepdims=True))
        s_ /= s_.sum(axis=1, keepdims=True)
        o[:, hh, :] = s_ @ v[:, kh, :]
    o = o.reshape(T, nh * hd) / (1.0 + np.exp(-gate))                # output gate: o * sigmoid(gate)
    return mm(g, o, b + "attn_output.weight")


def ffn(g, h, b, a):
    if b + "ffn_gate_inp.weight" in g.tensors:
        return moe_ffn(g, h, b, int(a("expert_used_count")), b + "ffn_gate_inp_shexp.weight" in g.tensors)
    return mm(g, silu(mm(g, h, b + "ffn_gate.weight")) * mm(g, h, b + "ffn_up.weight"), b + "ffn_down.weight")


def hidden_states(g, tokens):
    """The target's final-norm hidden states (T, H): the rows its LM head reads."""
    arch = g.kv["general.architecture"]
    a = lambda k, d=None: g.kv.get(f"{arch}.{k}", d)
    L = int(a("block_count")) - int(a("nextn_predict_layers", 0))
    eps = float(a("attention.layer_norm_rms_epsilon"))
    rec = a("attention.recurrent_layers")
    interval = int(a("full_attention_interval", 4))
    is_rec = [bool(rec[i]) if rec is not None else (i + 1) % interval != 0 for i in range(L)]
    pos = np.arange(len(tokens))
    x = g.get("token_embd.weight")[np.asarray(tokens)]
    for i in range(L):
        b = f"blk.{i}."
        h = rmsnorm(x, g.get(b + "attn_norm.weight"), eps)
        x = x + (gated_delta_net(g, h, b, arch, a, eps) if is_rec[i] else gated_attention(g, h, b, pos, a, eps))
        x = x + ffn(g, rmsnorm(x, g.get(b + "post_attention_norm.weight"), eps), b, a)
    return rmsnorm(x, g.get("output_norm.weight"), eps)


def mtp_block(g, tokens, hid, pos):
    """The MTP block over pairs (tokens[t], hid[t]) at positions pos, causal over the rows:
    its normed outputs g (T, H) and logits (T, V)."""
    arch = g.kv["general.architecture"]
    a = lambda k, d=None: g.kv.get(f"{arch}.{k}", d)
    b = f"blk.{int(a('block_count')) - 1}."                          # one MTP block, the last
    eps = float(a("attention.layer_norm_rms_epsilon"))
    e = rmsnorm(g.get("token_embd.weight")[np.asarray(tokens)], g.get(b + "nextn.enorm.weight"), eps)
    hh = rmsnorm(hid, g.get(b + "nextn.hnorm.weight"), eps)
    x = mm(g, np.concatenate([e, hh], axis=1), b + "nextn.eh_proj.weight")   # [embedding ; hidden]
    x = x + gated_attention(g, rmsnorm(x, g.get(b + "attn_norm.weight"), eps), b, pos, a, eps)
    x = x + ffn(g, rmsnorm(x, g.get(b + "post_attention_norm.weight"), eps), b, a)
    out = rmsnorm(x, g.get(b + "nextn.shared_head_norm.weight"), eps)
    head = "output.weight" if "output.weight" in g.tensors else "token_embd.weight"
    return out, mm(g, out, head)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--chain", type=int, default=3, help="chained draft steps after the teacher-forced rows")
    ap.add_argument("--out", required=True, help="writes OUT.f32 and OUT.json")
    args = ap.parse_args()
    g = GGUF(args.model)
    tokens = [int(t) for t in args.tokens.split(",") if t]
    T = len(tokens)
    h = hidden_states(g, tokens)
    toks, hid, pos = list(tokens[1:]), h[:T - 1], np.arange(T - 1)
    out, logits = mtp_block(g, toks, hid, pos)
    drafts = [int(np.argmax(logits[-1]))]
    for _ in range(args.chain):
        toks.append(drafts[-1])
        hid = np.concatenate([hid, out[-1:]], axis=0)
        pos = np.arange(len(toks))
        out, logits = mtp_block(g, toks, hid, pos)
        drafts.append(int(np.argmax(logits[-1])))
    with open(args.out + ".f32", "wb") as f:
        f.write(logits.astype("<f4").tobytes())
    meta = {"model": args.model.split("/")[-1], "tokens": tokens, "chain": args.chain, "drafts": drafts,
            "shape": list(logits.shape), "file": args.out.split("/")[-1] + ".f32",
            "rows": "row i < T-1: the pair (h_i, tokens[i+1]) at position i; row T-2+j (j >= 1): the chained "
                    "pair (previous row's normed output, drafts[j-1]) at position T-2+j; drafts[j] = argmax row T-2+j"}
    with open(args.out + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({k: meta[k] for k in ("tokens", "drafts", "shape")}))


if __name__ == "__main__":
    main()
