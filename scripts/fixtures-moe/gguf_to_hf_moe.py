#!/usr/bin/env python3
"""Convert a (random-weight) GGUF written by make_gguf.py back into a Hugging Face model folder
(config.json + model.safetensors, F32), laid out like the official Qwen checkpoints.  numpy only.

  python3 gguf_to_hf.py MODEL.gguf OUT_DIR [--vl-layout] [--fused-experts]

Architectures (GGUF general.architecture -> HF model_type / class):
  qwen2     -> qwen2             Qwen2ForCausalLM
  qwen3     -> qwen3             Qwen3ForCausalLM
  qwen3moe  -> qwen3_moe         Qwen3MoeForCausalLM
  qwen2moe  -> qwen2_moe         Qwen2MoeForCausalLM   (added in qwen.ts's scripts/fixtures-moe copy)
  qwen3next -> qwen3_next        Qwen3NextForCausalLM
  qwen35    -> qwen3_5_text      Qwen3_5ForCausalLM            (--vl-layout: qwen3_5,     Qwen3_5ForConditionalGeneration)
  qwen35moe -> qwen3_5_moe_text  Qwen3_5MoeForCausalLM         (--vl-layout: qwen3_5_moe, Qwen3_5MoeForConditionalGeneration)

This is the inverse of llama.cpp's convert_hf_to_gguf.py (conversion/qwen.py: Qwen2Model, Qwen3Model,
Qwen2MoeModel/Qwen3MoeModel, Qwen3NextModel, _LinearAttentionVReorderBase, _QwenMtpMixin; see
QWEN35_SPEC.md section 9):
  * hybrid archs (qwen35, qwen35moe, qwen3next): every "*norm.weight" except linear_attn.norm is stored
    as 1+w in GGUF (HF Qwen3NextRMSNorm is zero-centred: y = x_hat * (1 + w)) -> HF w = gguf - 1;
    qwen2 / qwen3 / qwen3moe norms are plain (y = x_hat * w) and copied unchanged;
  * ssm_a = -exp(A_log)              -> A_log = log(-ssm_a);   ssm_dt.bias -> linear_attn.dt_bias;
  * ssm_conv1d {K, C}               -> linear_attn.conv1d.weight [C, 1, K];
  * qwen35/qwen35moe: attn_qkv / attn_gate / ssm_beta / ssm_alpha -> in_proj_qkv / in_proj_z /
    in_proj_b / in_proj_a; when linear_num_value_heads != linear_num_key_heads every V-head-indexed
    tensor (V rows of qkv and of the conv, z, b, a, dt_bias, A_log, out_proj columns) goes from
    GGUF "tiled" order (head m*nk + g) back to HF "grouped" order (head g*r + m), r = nv / nk;
  * qwen3next: attn_qkv + attn_gate -> in_proj_qkvz with its per-key-head-group layout
    [q_g (dk), k_g (dk), v_g (r*dv), z_g (r*dv)] for g = 0..nk-1; ssm_ba -> in_proj_ba unchanged
    (already per group [b (r), a (r)]); V heads are in HF order in qwen3next GGUFs;
  * attn_q of the hybrid archs already holds HF q_proj's per-head [q (hd), gate (hd)] interleave;
  * MoE: ffn_{gate,up,down}_exps -> mlp.experts.{e}.{gate,up,down}_proj.weight (the official
    Qwen3-MoE / Qwen3-Next layout) or, with --fused-experts, mlp.experts.gate_up_proj [E, 2F, d]
    (gate rows first) + mlp.experts.down_proj [E, d, F] (the official Qwen3.5-MoE layout and the
    in-memory layout of transformers' Qwen3NextExperts / Qwen3_5MoeExperts);
    ffn_gate_inp -> mlp.gate.weight; ffn_gate_inp_shexp -> mlp.shared_expert_gate.weight [1, d];
  * MTP (nextn) block L = num_hidden_layers -> mtp.layers.0.*, nextn.eh_proj -> mtp.fc,
    nextn.enorm -> mtp.pre_fc_norm_embedding, nextn.hnorm -> mtp.pre_fc_norm_hidden,
    nextn.shared_head_norm -> mtp.norm (all MTP norms also 1+w -> w);
  * tied embeddings: no lm_head.weight (as in the tied official checkpoints).
Prefix: model.* (+ lm_head.weight) or, with --vl-layout (Qwen3.5 family only), model.language_model.*
with the text config nested under text_config; mtp.* stays top level in both (as released).

--debug-break NAME deliberately writes a wrong checkpoint (for negative tests of the verification):
  skip-v-reorder, norm-keep-1pw, a-log-raw, qkvz-no-interleave, swap-gate-up.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_forward import GGUF  # noqa: E402  (plain GGUF v3 reader: F32 / F16 / Q8_0 -> float64)

HYBRID = ("qwen35", "qwen35moe", "qwen3next")
MOE = ("qwen3moe", "qwen35moe", "qwen3next", "qwen2moe")
BREAKS = ("skip-v-reorder", "norm-keep-1pw", "a-log-raw", "qkvz-no-interleave", "swap-gate-up")


def tiled_to_grouped(x, axis, nk, r, hd, skip=False):
    """Inverse of llama.cpp's _reorder_v_heads along `axis` (length nv*hd, nv = nk*r):
    GGUF (tiled) head index m*nk + g  ->  HF (grouped) head index g*r + m."""
    if r == 1 or skip:
        return x
    x = np.moveaxis(x, axis, 0)
    rest = x.shape[1:]
    assert x.shape[0] == nk * r * hd, (x.shape, nk, r, hd)
    x = x.reshape(r, nk, hd, *rest).swapaxes(0, 1).reshape(nk * r * hd, *rest)
    return np.moveaxis(x, 0, axis)


class Converter:
    def __init__(self, g, fused_experts=False, vl_layout=False, debug_break=None):
        self.g = g
        self.arch = g.kv["general.architecture"]
        if self.arch not in ("qwen2", "qwen3") + MOE + ("qwen35",):
            raise SystemExit(f"unsupported architecture {self.arch!r}")
        if vl_layout and self.arch not in ("qwen35", "qwen35moe"):
            raise SystemExit("--vl-layout is for the Qwen3.5 family (qwen35, qwen35moe) only")
        if fused_experts and self.arch not in MOE:
            raise SystemExit("--fused-experts needs a MoE arch")
        self.hybrid = self.arch in HYBRID
        self.fused = fused_experts
        self.vl = vl_layout
        self.brk = debug_break
        self.plan = []          # (hf name, shape, thunk -> np.ndarray)
        self.used = set()       # GGUF tensors consumed
        self.expert_cache = {}
        a = self.a
        self.n_mtp = int(a("nextn_predict_layers", 0))
        self.L = int(a("block_count")) - self.n_mtp
        if self.n_mtp > 1:
            raise SystemExit("HF Qwen checkpoints carry one MTP block (mtp.fc / mtp.norm are unindexed); "
                             f"this GGUF has nextn_predict_layers = {self.n_mtp}")
        if self.hybrid:
            self.nk, self.nv = int(a("ssm.group_count")), int(a("ssm.time_step_rank"))
            self.dk = int(a("ssm.state_size"))
            self.dv = int(a("ssm.inner_size")) // self.nv
            self.r = self.nv // self.nk
            self.tiled = self.arch in ("qwen35", "qwen35moe")  # qwen3next GGUFs keep HF (grouped) V order

    # ------------------------------------------------------------------ helpers
    def a(self, key, default=None):
        return self.g.kv.get(f"{self.arch}.{key}", default)

    def has(self, name):
        return name in self.g.tensors

    def load(self, name):
        """float32 array, numpy shape = reversed GGUF dims (F32: a view of the mmapped file, no copy;
        F16 / Q8_0: dequantised)."""
        dims, gtype, off = self.g.tensors[name]
        shape = tuple(reversed(dims))
        if gtype == 0:
            start = self.g.data_start + off
            return self.g.buf[start:start + 4 * int(np.prod(dims, dtype=np.int64))].view("<f4").reshape(shape)
        return self.g.get(name).astype(np.float32)

    def get(self, name):
        self.used.add(name)
        return self.load(name)

    def shape_of(self, name):
        return tuple(reversed(self.g.tensors[name][0]))

    def put(self, hf_name, shape, fn):
        self.plan.append((hf_name, tuple(int(s) for s in shape), fn))

    def put_copy(self, hf_name, gname, shape=None):
        self.used.add(gname)
        shp = self.shape_of(gname) if shape is None else shape
        self.put(hf_name, shp, lambda: self.load(gname).reshape(shp))

    def put_norm(self, hf_name, gname):
        """Zero-centred RMSNorm weights (hybrid archs): GGUF holds 1 + w."""
        self.used.add(gname)
        sub = 1.0 if self.hybrid and self.brk != "norm-keep-1pw" else 0.0
        self.put(hf_name, self.shape_of(gname), lambda: self.load(gname) - np.float32(sub))

    # ------------------------------------------------------------------ blocks
    def attention(self, b, p):
        self.put_copy(p + "self_attn.q_proj.weight", b + "attn_q.weight")
        self.put_copy(p + "self_attn.k_proj.weight", b + "attn_k.weight")
        self.put_copy(p + "self_attn.v_proj.weight", b + "attn_v.weight")
        for n in ("q", "k", "v"):
            if self.has(b + f"attn_{n}.bias"):
                self.put_copy(p + f"self_attn.{n}_proj.bias", b + f"attn_{n}.bias")
        self.put_copy(p + "self_attn.o_proj.weight", b + "attn_output.weight")
        if self.has(b + "attn_q_norm.weight"):
            self.put_norm(p + "self_attn.q_norm.weight", b + "attn_q_norm.weight")
            self.put_norm(p + "self_attn.k_norm.weight", b + "attn_k_norm.weight")

    def delta_net(self, b, p):
        nk, nv, dk, dv, r = self.nk, self.nv, self.dk, self.dv, self.r
        key_dim, value_dim = nk * dk, nv * dv
        skip = self.brk == "skip-v-reorder"
        reo = (lambda x, axis, hd: tiled_to_grouped(x, axis, nk, r, hd, skip)) if self.tiled else \
            (lambda x, axis, hd: x)
        d = self.shape_of(b + "attn_qkv.weight")[1]
        q = p + "linear_attn."
        if self.arch == "qwen3next":
            def qkvz():
                qkv = self.get(b + "attn_qkv.weight")
                z = self.get(b + "attn_gate.weight")
                parts = [qkv[:key_dim].reshape(nk, dk, d), qkv[key_dim:2 * key_dim].reshape(nk, dk, d),
                         qkv[2 * key_dim:].reshape(nk, r * dv, d), z.reshape(nk, r * dv, d)]
                if self.brk == "qkvz-no-interleave":   # plain [q | k | v | z] concatenation (wrong)
                    return np.concatenate([x.reshape(-1, d) for x in parts], axis=0)
                return np.concatenate(parts, axis=1).reshape(-1, d)   # per key-head group [q, k, v, z]
            self.used.update([b + "attn_qkv.weight", b + "attn_gate.weight"])
            self.put(q + "in_proj_qkvz.weight", (2 * key_dim + 2 * value_dim, d), qkvz)
            if not self.has(b + "ssm_ba.weight"):
                raise SystemExit(f"{b}ssm_ba.weight missing (qwen3next GGUFs carry the fused, per-group b/a)")
            self.put_copy(q + "in_proj_ba.weight", b + "ssm_ba.weight")   # per k-head group [b (r), a (r)]
        else:
            def qkv():
                w = self.get(b + "attn_qkv.weight")
                return np.concatenate([w[:2 * key_dim], reo(w[2 * key_dim:], 0, dv)], axis=0)
            self.used.add(b + "attn_qkv.weight")
            self.put(q + "in_proj_qkv.weight", (2 * key_dim + value_dim, d), qkv)
            self.used.add(b + "attn_gate.weight")
            self.put(q + "in_proj_z.weight", (value_dim, d), lambda: reo(self.load(b + "attn_gate.weight"), 0, dv))
            self.used.update([b + "ssm_beta.weight", b + "ssm_alpha.weight"])
            self.put(q + "in_proj_b.weight", (nv, d), lambda: reo(self.load(b + "ssm_beta.weight"), 0, 1))
            self.put(q + "in_proj_a.weight", (nv, d), lambda: reo(self.load(b + "ssm_alpha.weight"), 0, 1))
        C, K = self.shape_of(b + "ssm_conv1d.weight")

        def conv():
            w = self.get(b + "ssm_conv1d.weight")                 # (C, K)
            w = np.concatenate([w[:2 * key_dim], reo(w[2 * key_dim:], 0, dv)], axis=0)
            return w.reshape(C, 1, K)
        self.used.add(b + "ssm_conv1d.weight")
        self.put(q + "conv1d.weight", (C, 1, K), conv)
        self.used.update([b + "ssm_dt.bias", b + "ssm_a"])
        self.put(q + "dt_bias", (nv,), lambda: reo(self.load(b + "ssm_dt.bias"), 0, 1))
        if self.brk == "a-log-raw":   # wrong: stores A = exp(A_log) instead of A_log
            self.put(q + "A_log", (nv,), lambda: reo(-self.load(b + "ssm_a"), 0, 1))
        else:                         # ssm_a = -exp(A_log)
            self.put(q + "A_log", (nv,), lambda: reo(np.log(-self.load(b + "ssm_a").astype(np.float64)), 0, 1))
        self.put_copy(q + "norm.weight", b + "ssm_norm.weight")          # gated norm: plain weight, no -1
        self.used.add(b + "ssm_out.weight")
        self.put(q + "out_proj.weight", self.shape_of(b + "ssm_out.weight"),
                 lambda: reo(self.load(b + "ssm_out.weight"), 1, dv))

    def ffn(self, b, p):
        if not self.has(b + "ffn_gate_inp.weight"):
            for n in ("gate", "up", "down"):
                self.put_copy(p + f"mlp.{n}_proj.weight", b + f"ffn_{n}.weight")
            return
        self.put_copy(p + "mlp.gate.weight", b + "ffn_gate_inp.weight")
        E, F, d = self.shape_of(b + "ffn_gate_exps.weight")
        names = {n: b + f"ffn_{n}_exps.weight" for n in ("gate", "up", "down")}
        self.used.update(names.values())
        first, second = ("up", "gate") if self.brk == "swap-gate-up" else ("gate", "up")
        if self.fused:
            self.put(p + "mlp.experts.gate_up_proj", (E, 2 * F, d),
                     lambda: np.concatenate([self.load(names[first]), self.load(names[second])], axis=1))
            self.put(p + "mlp.experts.down_proj", (E, d, F), lambda: self.load(names["down"]))
        else:
            cache = self.expert_cache   # the tensors are written in name order: one block at a time

            def expert(n, e):
                if names[n] not in cache:
                    if any(not k.startswith(b) for k in cache):
                        cache.clear()
                    cache[names[n]] = self.load(names[n])
                return cache[names[n]][e]
            for e in range(E):
                self.put(p + f"mlp.experts.{e}.gate_proj.weight", (F, d), lambda e=e: expert(first, e))
                self.put(p + f"mlp.experts.{e}.up_proj.weight", (F, d), lambda e=e: expert(second, e))
                self.put(p + f"mlp.experts.{e}.down_proj.weight", (d, F), lambda e=e: expert("down", e))
        if self.has(b + "ffn_gate_inp_shexp.weight"):
            gi = b + "ffn_gate_inp_shexp.weight"
            self.put_copy(p + "mlp.shared_expert_gate.weight", gi, shape=(1, int(np.prod(self.shape_of(gi)))))
            for n in ("gate", "up", "down"):
                self.put_copy(p + f"mlp.shared_expert.{n}_proj.weight", b + f"ffn_{n}_shexp.weight")

    def build(self):
        pre = "model.language_model." if self.vl else "model."
        self.put_copy(pre + "embed_tokens.weight", "token_embd.weight")
        for i in range(self.L + self.n_mtp):
            b = f"blk.{i}."
            p = f"{pre}layers.{i}." if i < self.L else f"mtp.layers.{i - self.L}."
            self.put_norm(p + "input_layernorm.weight", b + "attn_norm.weight")
            post = b + ("post_attention_norm.weight" if self.hybrid else "ffn_norm.weight")
            self.put_norm(p + "post_attention_layernorm.weight", post)
            if self.has(b + "attn_qkv.weight"):
                self.delta_net(b, p)
            else:
                self.attention(b, p)
            self.ffn(b, p)
            if i >= self.L:
                self.put_copy("mtp.fc.weight", b + "nextn.eh_proj.weight")
                self.put_norm("mtp.pre_fc_norm_embedding.weight", b + "nextn.enorm.weight")
                self.put_norm("mtp.pre_fc_norm_hidden.weight", b + "nextn.hnorm.weight")
                self.put_norm("mtp.norm.weight", b + "nextn.shared_head_norm.weight")
        self.put_norm(pre + "norm.weight", "output_norm.weight")
        if self.has("output.weight"):
            self.put_copy("lm_head.weight", "output.weight")
        left = sorted(set(self.g.tensors) - self.used)
        if left:
            raise SystemExit(f"GGUF tensors not mapped to HF: {left[:10]}{' ...' if len(left) > 10 else ''}")
        names = [n for n, _, _ in self.plan]
        assert len(names) == len(set(names)), "duplicate HF tensor names"

    # ------------------------------------------------------------------ config
    def token_id(self, text, default=None):
        toks = self.g.kv.get("tokenizer.ggml.tokens")
        if toks is not None and text in toks:
            return toks.index(text)
        return default

    def config(self):
        a, arch = self.a, self.arch
        H = int(a("embedding_length"))
        nh = int(a("attention.head_count"))
        nkv = int(a("attention.head_count_kv", nh))
        hd = int(a("attention.key_length", H // nh))
        V = int(self.g.tensors["token_embd.weight"][0][1])
        tied = not self.has("output.weight")
        f32 = lambda v: float(str(np.float32(v)))   # shortest decimal of the GGUF float32 (1e-06, not 9.99e-07)
        eps = f32(a("attention.layer_norm_rms_epsilon"))
        theta = f32(a("rope.freq_base", 10000.0))
        theta = int(theta) if theta.is_integer() else theta
        ctx = int(a("context_length"))
        ff = a("feed_forward_length")
        eot = self.token_id("<|endoftext|>")
        eos = self.g.kv.get("tokenizer.ggml.eos_token_id")
        c = {}
        if arch == "qwen2moe":   # transformers' Qwen2MoeConfig field set (Qwen1.5-MoE-A2.7B's config.json)
            return {"architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": eot,
                    "decoder_sparse_step": 1, "eos_token_id": eot, "hidden_act": "silu", "hidden_size": H,
                    "initializer_range": 0.02, "intermediate_size": int(ff), "max_position_embeddings": ctx,
                    "max_window_layers": self.L, "mlp_only_layers": [], "model_type": "qwen2_moe",
                    "moe_intermediate_size": int(a("expert_feed_forward_length")), "norm_topk_prob": False,
                    "num_attention_heads": nh, "num_experts": int(a("expert_count")),
                    "num_experts_per_tok": int(a("expert_used_count")), "num_hidden_layers": self.L,
                    "num_key_value_heads": nkv, "output_router_logits": False, "qkv_bias": True,
                    "rms_norm_eps": eps, "rope_theta": theta, "router_aux_loss_coef": 0.001,
                    "shared_expert_intermediate_size": int(a("expert_shared_feed_forward_length")),
                    "sliding_window": ctx, "tie_word_embeddings": tied, "torch_dtype": "float32",
                    "use_cache": True, "use_sliding_window": False, "vocab_size": V}
        if arch in ("qwen2", "qwen3", "qwen3moe"):
            cls = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "qwen3moe": "Qwen3MoeForCausalLM"}[arch]
            c = {"architectures": [cls]}
            if arch != "qwen2":
                c["attention_bias"] = False
            c["attention_dropout"] = 0.0
            c["bos_token_id"] = eot
            c["eos_token_id"] = eot if arch == "qwen2" else int(eos)   # Qwen2.5 base: <|endoftext|>; Qwen3: <|im_end|>
            if arch == "qwen3moe":
                c["decoder_sparse_step"] = 1
            if arch != "qwen2":
                c["head_dim"] = hd
            c.update({"hidden_act": "silu", "hidden_size": H, "initializer_range": 0.02,
                      "intermediate_size": int(ff), "max_position_embeddings": ctx,
                      "max_window_layers": self.L})
            if arch == "qwen3moe":
                c.update({"mlp_only_layers": [], "model_type": "qwen3_moe",
                          "moe_intermediate_size": int(a("expert_feed_forward_length")), "norm_topk_prob": True,
                          "num_attention_heads": nh, "num_experts": int(a("expert_count")),
                          "num_experts_per_tok": int(a("expert_used_count"))})
            else:
                c.update({"model_type": arch, "num_attention_heads": nh})
            c.update({"num_hidden_layers": self.L, "num_key_value_heads": nkv})
            if arch == "qwen3moe":
                c["output_router_logits"] = False
            c["rms_norm_eps"] = eps
            if arch != "qwen2":
                c["rope_scaling"] = None
            c["rope_theta"] = theta
            if arch == "qwen3moe":
                c["router_aux_loss_coef"] = 0.001
            c["sliding_window"] = ctx if arch == "qwen2" else None
            c.update({"tie_word_embeddings": tied, "torch_dtype": "float32", "use_cache": True,
                      "use_sliding_window": False, "vocab_size": V})
            return c
        # ---- hybrid archs
        n_rot = int(a("rope.dimension_count", hd))
        prf = n_rot / hd
        rec = a("attention.recurrent_layers")
        interval = int(a("full_attention_interval", 4))
        layer_types = ["linear_attention" if (bool(rec[i]) if rec is not None else (i + 1) % interval != 0)
                       else "full_attention" for i in range(self.L)]
        lin = {"linear_conv_kernel_dim": int(a("ssm.conv_kernel")), "linear_key_head_dim": self.dk,
               "linear_num_key_heads": self.nk, "linear_num_value_heads": self.nv,
               "linear_value_head_dim": self.dv}
        if arch == "qwen3next":
            c = {"architectures": ["Qwen3NextForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                 "bos_token_id": eot, "decoder_sparse_step": 1, "eos_token_id": int(eos),
                 "full_attention_interval": interval, "head_dim": hd, "hidden_act": "silu", "hidden_size": H,
                 "initializer_range": 0.02, "intermediate_size": int(ff) if ff is not None else 4 * H,
                 "layer_types": layer_types, **lin, "max_position_embeddings": ctx, "mlp_only_layers": [],
                 "model_type": "qwen3_next", "moe_intermediate_size": int(a("expert_feed_forward_length")),
                 "norm_topk_prob": True, "num_attention_heads": nh, "num_experts": int(a("expert_count")),
                 "num_experts_per_tok": int(a("expert_used_count")), "num_hidden_layers": self.L,
                 "num_key_value_heads": nkv, "output_router_logits": False, "partial_rotary_factor": prf,
                 "rms_norm_eps": eps, "rope_scaling": None, "rope_theta": theta,
                 "router_aux_loss_coef": 0.001,
                 "shared_expert_intermediate_size": int(a("expert_shared_feed_forward_length")),
                 "tie_word_embeddings": tied, "torch_dtype": "float32", "use_cache": True,
                 "use_sliding_window": False, "vocab_size": V}
            return c
        sections = a("rope.dimension_sections")
        sections = [int(x) for x in sections[:3]] if sections is not None else [11, 11, 10]
        rope = {"mrope_interleaved": True, "mrope_section": sections, "rope_type": "default",
                "rope_theta": theta, "partial_rotary_factor": prf}
        moe = arch == "qwen35moe"
        t = {"attention_bias": False, "attention_dropout": 0.0, "attn_output_gate": True}
        if moe:
            t["bos_token_id"] = eot
        t.update({"dtype": "float32", "eos_token_id": eot, "full_attention_interval": interval,
                  "head_dim": hd, "hidden_act": "silu", "hidden_size": H, "initializer_range": 0.02})
        if not moe:
            t["intermediate_size"] = int(ff)
        t.update({"layer_types": layer_types, **lin, "mamba_ssm_dtype": "float32",
                  "max_position_embeddings": ctx})
        if not moe:
            t["mlp_only_layers"] = []
        t["model_type"] = "qwen3_5_moe_text" if moe else "qwen3_5_text"
        if moe:
            t["moe_intermediate_size"] = int(a("expert_feed_forward_length"))
        t.update({"mtp_num_hidden_layers": self.n_mtp, "mtp_use_dedicated_embeddings": False,
                  "num_attention_heads": nh})
        if moe:
            t.update({"num_experts": int(a("expert_count")), "num_experts_per_tok": int(a("expert_used_count"))})
        t.update({"num_hidden_layers": self.L, "num_key_value_heads": nkv})
        if moe:
            t.update({"output_router_logits": False, "pad_token_id": None, "partial_rotary_factor": prf})
        t.update({"rms_norm_eps": eps, "rope_parameters": rope})
        if moe:
            t["router_aux_loss_coef"] = 0.001
            t["shared_expert_intermediate_size"] = int(a("expert_shared_feed_forward_length"))
        t.update({"tie_word_embeddings": tied, "use_cache": True, "vocab_size": V})
        if not self.vl:
            return {"architectures": ["Qwen3_5MoeForCausalLM" if moe else "Qwen3_5ForCausalLM"], **t}
        vision = {"deepstack_visual_indexes": [], "depth": 12, "hidden_act": "gelu_pytorch_tanh",
                  "hidden_size": 768, "in_channels": 3, "initializer_range": 0.02, "intermediate_size": 3072,
                  "model_type": "qwen3_5_moe_vision" if moe else "qwen3_5_vision", "num_heads": 12,
                  "num_position_embeddings": 2304, "out_hidden_size": H, "patch_size": 16,
                  "spatial_merge_size": 2, "temporal_patch_size": 2}
        return {"architectures": ["Qwen3_5MoeForConditionalGeneration" if moe else "Qwen3_5ForConditionalGeneration"],
                "dtype": "float32",
                "image_token_id": self.token_id("<|image_pad|>", 248056),
                "model_type": "qwen3_5_moe" if moe else "qwen3_5",
                "text_config": t, "tie_word_embeddings": tied,
                "video_token_id": self.token_id("<|video_pad|>", 248057),
                "vision_config": vision,
                "vision_end_token_id": self.token_id("<|vision_end|>", 248054),
                "vision_start_token_id": self.token_id("<|vision_start|>", 248053)}


def write_safetensors(path, plan, metadata):
    """Single-file safetensors (all F32), tensors in name order, header padded to 8 bytes."""
    plan = sorted(plan, key=lambda x: x[0])
    header, off = {"__metadata__": metadata}, 0
    for name, shape, _ in plan:
        n = 4 * int(np.prod(shape, dtype=np.int64))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, shape, fn in plan:
            x = np.ascontiguousarray(fn(), dtype="<f4")
            if x.shape != tuple(shape):
                raise AssertionError(f"{name}: planned {shape}, got {x.shape}")
            if not np.all(np.isfinite(x)):
                raise AssertionError(f"{name}: non-finite values")
            f.write(x.tobytes())
    os.replace(tmp, path)
    return off


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf")
    ap.add_argument("out_dir")
    ap.add_argument("--vl-layout", action="store_true",
                    help="Qwen3.5 family: model.language_model.* tensors, *ForConditionalGeneration config "
                         "with text_config nested (as the released Qwen3.5 checkpoints)")
    ap.add_argument("--fused-experts", action="store_true",
                    help="MoE experts as mlp.experts.gate_up_proj [E,2F,d] + mlp.experts.down_proj [E,d,F] "
                         "(official Qwen3.5-MoE layout) instead of one tensor per expert")
    ap.add_argument("--debug-break", choices=BREAKS, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    g = GGUF(args.gguf)
    conv = Converter(g, fused_experts=args.fused_experts, vl_layout=args.vl_layout, debug_break=args.debug_break)
    conv.build()
    cfg = conv.config()
    os.makedirs(args.out_dir, exist_ok=True)
    nbytes = write_safetensors(os.path.join(args.out_dir, "model.safetensors"), conv.plan, {"format": "pt"})
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out_dir}: {cfg.get('model_type')} ({conv.arch}), {len(conv.plan)} tensors, "
          f"{nbytes / 2**20:.1f} MiB F32{' [DEBUG-BREAK ' + args.debug_break + ']' if args.debug_break else ''}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
