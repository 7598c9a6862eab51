#!/usr/bin/env python3
"""Write a random-weight Qwen2 / Qwen3 / Qwen3-MoE / Qwen3.5 / Qwen3.5-MoE / Qwen3-Next
architecture GGUF v3 file (numpy only).

The file loads in llama.cpp (arch "qwen2", "qwen3", "qwen3moe", "qwen35", "qwen35moe" or
"qwen3next") and is meant as a peer benchmark input and a correctness oracle fixture for
another inference engine.  The hybrid (Gated DeltaNet + gated attention) layout follows
QWEN35_SPEC.md; tensor names / shapes / metadata keys are those llama.cpp's loader expects.

Weights: normal(0, std) float32, seeded per tensor from (seed, crc32(name)), so
the same tensor has the same underlying float values whatever --type is chosen
(F32 / F16 / Q8_0 files of one preset+seed are quantisations of one model).
Norm weights are 1.0 (or 1 + normal(0, --norm-noise) when asked).  1-D tensors
(norms, biases) are always stored as F32, as llama.cpp's converter does; so are the
tensors its converter always keeps in F32 (ssm_conv1d, ssm_a, ssm_dt.bias, MoE router
ffn_gate_inp, shared-expert gate ffn_gate_inp_shexp).
Gated DeltaNet parameters (hybrid archs): ssm_a = -exp(A_log) with A = exp(A_log) ~ U(1, 16)
(transformers' init); ssm_dt.bias = softplus^-1(dt), dt = exp(U(ln 1e-3, ln 1e-1)) (Mamba's
dt init), so the per-token decay exp(g) = exp(-A softplus(a + dt_bias)) spans ~0.2 .. 0.999;
ssm_conv1d ~ U(-1/sqrt(K), 1/sqrt(K)) (PyTorch's depthwise Conv1d init).

Tokenizer: a synthetic byte-level GPT-2 style BPE vocab (tokenizer.ggml.model
= "gpt2", pre = "qwen2"): 256 byte tokens, a few merges, filler tokens, and the
Qwen special tokens (<|endoftext|>, <|im_start|>, <|im_end|>, ...).  For a vocab
of the real Qwen size (151936) the specials sit at their real ids (151643..).
Qwen3.5 archs (qwen35, qwen35moe) use pre = "qwen35" and the Qwen3.5 special list
(33 tokens, <|endoftext|> .. <|audio_pad|>, incl. <think> </think> <tool_call> ...); for
the real vocab size (248320) they sit at their real ids 248044..248076.

Vision-language presets (tiny-qwen25vl, tiny-qwen35vl) write TWO files: the language model
(arch "qwen2vl" resp. "qwen35") and an mmproj GGUF (arch "clip", llama.cpp's libmtmd vision
tower: projector "qwen2.5vl_merger" resp. "qwen3vl_merger"), by default
models/<preset>-<type>.gguf and models/mmproj-<preset>-<type>.gguf.  Vision weights are
N(0, 1/fan_in) (so activations stay O(1) and attention is not uniform), biases N(0, 0.02^2),
vision norms 1 + N(0, 0.1^2) (--vision-norm-noise); see VISION_SPEC.md.

Usage:
  python3 make_gguf.py --preset tiny-qwen25vl --type f32        # + models/mmproj-tiny-qwen25vl-f32.gguf
  python3 make_gguf.py --preset tiny --type f32
  python3 make_gguf.py --preset qwen2.5-0.5b --type q8_0 [--out models/x.gguf]
  python3 make_gguf.py --preset tiny-qwen35 --type f32          # hybrid DeltaNet/attention
  python3 make_gguf.py --preset qwen35-0.8b --type q8_0 [--mtp 1]
  python3 make_gguf.py --list
"""
import argparse
import os
import struct
import sys
import time
import zlib

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# gguf metadata value types
GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32 = 0, 1, 2, 3, 4, 5
GGUF_FLOAT32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 6, 7, 8, 9
GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64 = 10, 11, 12

# ggml tensor types
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
QK8_0 = 32
TYPE_BY_NAME = {"f32": GGML_F32, "f16": GGML_F16, "q8_0": GGML_Q8_0}
# llama_ftype values for general.file_type
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}

# token types (llama.cpp / gguf-py TokenType)
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6

PRESETS = {
    # small and fast: for oracle / unit tests
    "tiny": dict(arch="qwen2", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16,
                 ff=128, vocab=0, ctx=2048, rope_theta=1e6, eps=1e-6, tied=True),
    # real Qwen2.5-0.5B shape (494M params)
    "qwen2.5-0.5b": dict(arch="qwen2", hidden=896, layers=24, heads=14, kv_heads=2, head_dim=64,
                         ff=4864, vocab=151936, ctx=32768, rope_theta=1e6, eps=1e-6, tied=True),
    # Qwen3 variants (q/k RMS norms, no q/k/v biases, head_dim independent of hidden/heads)
    "tiny-qwen3": dict(arch="qwen3", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=32,
                       ff=128, vocab=0, ctx=2048, rope_theta=1e6, eps=1e-6, tied=True),
    "qwen3-0.6b": dict(arch="qwen3", hidden=1024, layers=28, heads=16, kv_heads=8, head_dim=128,
                       ff=3072, vocab=151936, ctx=40960, rope_theta=1e6, eps=1e-6, tied=True),
    # The tiny MoE / hybrid presets have an untied lm head (output.weight), like Qwen3-30B-A3B,
    # Qwen3.5-9B / 35B-A3B and Qwen3-Next: with tied random embeddings the argmax is nearly always
    # the input token, which makes greedy-decode checks uninformative.
    # Qwen3-MoE (qwen3moe): qwen3 attention + routed experts only (softmax -> top-k -> renormalise).
    # Ratios like Qwen3-30B-A3B (128 experts, top-8, moe_intermediate 768 = 0.375 * hidden).
    "tiny-qwen3moe": dict(arch="qwen3moe", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=32,
                          ff=128, vocab=0, ctx=2048, rope_theta=1e6, eps=1e-6, tied=False,
                          experts=8, experts_used=2, expert_ff=32),
    # Qwen2-MoE (qwen2moe; added in qwen.ts's scripts/fixtures-moe copy): qwen2 attention (q/k/v
    # bias, head_dim = hidden / heads) + routed experts (softmax -> top-k, NOT renormalised) + a
    # shared expert scaled by sigmoid(ffn_gate_inp_shexp . h); like Qwen1.5-MoE-A2.7B (60 experts,
    # top-4, 1408 / shared 5632) in miniature. llama.cpp's qwen2moe requires output.weight (untied).
    "tiny-qwen2moe": dict(arch="qwen2moe", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16,
                          ff=128, vocab=0, ctx=2048, rope_theta=1e6, eps=1e-6, tied=False,
                          experts=8, experts_used=4, expert_ff=32, shared_ff=96),
    # Qwen3.5 dense hybrid (qwen35): layers 0,1,2 Gated DeltaNet, layer 3 gated full attention
    # (full_attention_interval 4).  Ratios like Qwen3.5-0.8B (q heads*head_dim = 2*hidden,
    # value_dim = 2*hidden, ff = 3.5*hidden, partial rotary 0.25, interleaved M-RoPE sections) but
    # with 2 key heads / 4 value heads (like 9B's 16/32) so the grouped->tiled V-head order matters.
    "tiny-qwen35": dict(arch="qwen35", hidden=128, layers=4, heads=4, kv_heads=2, head_dim=64,
                        ff=448, vocab=0, ctx=4096, rope_theta=1e7, eps=1e-6, tied=False,
                        lin_k_heads=2, lin_v_heads=4, lin_head_dim=32, conv_kernel=4,
                        rot_factor=0.25, mrope=[3, 3, 2, 0], attn_interval=4),
    # Qwen3.5-MoE (qwen35moe): tiny-qwen35 with every FFN replaced by 8 routed experts (top-2,
    # softmax, renormalised) + 1 sigmoid-gated shared expert (like 35B-A3B: 256 / top-8 / 1 shared)
    "tiny-qwen35moe": dict(arch="qwen35moe", hidden=128, layers=4, heads=4, kv_heads=2, head_dim=64,
                           ff=0, vocab=0, ctx=4096, rope_theta=1e7, eps=1e-6, tied=False,
                           lin_k_heads=2, lin_v_heads=4, lin_head_dim=32, conv_kernel=4,
                           rot_factor=0.25, mrope=[3, 3, 2, 0], attn_interval=4,
                           experts=8, experts_used=2, expert_ff=64, shared_ff=64),
    # Qwen3-Next (qwen3next): like qwen35moe but fused ssm_ba (b,a interleaved per key-head group),
    # V heads in HF (grouped) order, plain NEOX partial RoPE (no M-RoPE sections)
    "tiny-qwen3next": dict(arch="qwen3next", hidden=128, layers=4, heads=4, kv_heads=2, head_dim=64,
                           ff=448, vocab=0, ctx=4096, rope_theta=5e6, eps=1e-6, tied=False,
                           lin_k_heads=2, lin_v_heads=4, lin_head_dim=32, conv_kernel=4,
                           rot_factor=0.25, attn_interval=4,
                           experts=8, experts_used=2, expert_ff=64, shared_ff=64),
    # real Qwen3-30B-A3B shape (config.json: hidden 2048, 48 layers, 32 q / 4 kv heads, head_dim
    # 128, 128 experts top-8, moe_intermediate 768, norm_topk_prob, untied, theta 1e6; ~30.5B
    # params, 3.3B active). Benchmark input: --layers N writes the first N layers only (Q8_0 at
    # 48 layers is ~32 GB; each layer ~0.65 GB Q8_0, embeddings + head ~0.66 GB).
    "qwen3-30b-a3b": dict(arch="qwen3moe", hidden=2048, layers=48, heads=32, kv_heads=4, head_dim=128,
                          ff=6144, vocab=151936, ctx=40960, rope_theta=1e6, eps=1e-6, tied=False,
                          experts=128, experts_used=8, expert_ff=768),
    # real Qwen3.5-0.8B text-decoder shape (config.json text_config; ~0.75B params w/o vision+MTP)
    "qwen35-0.8b": dict(arch="qwen35", hidden=1024, layers=24, heads=8, kv_heads=2, head_dim=256,
                        ff=3584, vocab=248320, ctx=262144, rope_theta=1e7, eps=1e-6, tied=True,
                        lin_k_heads=16, lin_v_heads=16, lin_head_dim=128, conv_kernel=4,
                        rot_factor=0.25, mrope=[11, 11, 10, 0], attn_interval=4),
    # ---- vision-language presets: write TWO files, the language model and an mmproj GGUF
    # (llama.cpp's clip/mtmd vision tower).  See VISION_SPEC.md.
    # Qwen2.5-VL: LM arch "qwen2vl" (= qwen2 tensors + M-RoPE, rope.dimension_sections like
    # Qwen2.5-VL's mrope_section [16, 24, 24] of head_dim/2 = 64, here [2, 3, 3] of 8); vocab
    # includes all 22 Qwen2 specials (<|vision_start|> ...).  Untied lm head, and weights std
    # 0.125 (~1/sqrt(hidden)) instead of 0.02 so that the (q/k-norm-less) attention is not
    # uniform and M-RoPE positions of image tokens visibly change the logits.
    # Vision: projector "qwen2.5vl_merger": RMSNorm, SiLU-gated MLP with biases, separate q/k/v
    # with biases, window attention with full attention every n_wa_pattern-th layer
    # (HF fullatt_block_indexes [1, 3] here, [7, 15, 23, 31] in the real model), patch 14.
    "tiny-qwen25vl": dict(arch="qwen2vl", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16,
                          ff=128, vocab=0, ctx=4096, rope_theta=1e6, eps=1e-6, tied=False,
                          mrope=[2, 3, 3, 0], std=0.125,
                          vision=dict(proj="qwen2.5vl_merger", hidden=32, layers=4, heads=2, ff=96,
                                      patch=14, image_size=560, wa_pattern=2, eps=1e-6,
                                      mean=[0.48145466, 0.4578275, 0.40821073],
                                      std=[0.26862954, 0.26130258, 0.27577711])),
    # Qwen3.5 (dense) with its vision tower: LM identical to tiny-qwen35 (same tensors and
    # values for the same seed); vision projector "qwen3vl_merger" (llama.cpp converts
    # Qwen3_5ForConditionalGeneration's vision tower with the Qwen3-VL class; Qwen3.5 has no
    # deepstack): LayerNorm, GELU(tanh) MLP up/down with biases, fused qkv with bias, patch
    # embedding bias, learned 2-D position embedding (n_pos = 8x8 grid here, 48x48 real)
    # bilinearly resized to the patch grid, patch 16, full attention everywhere.
    "tiny-qwen35vl": dict(arch="qwen35", hidden=128, layers=4, heads=4, kv_heads=2, head_dim=64,
                          ff=448, vocab=0, ctx=4096, rope_theta=1e7, eps=1e-6, tied=False,
                          lin_k_heads=2, lin_v_heads=4, lin_head_dim=32, conv_kernel=4,
                          rot_factor=0.25, mrope=[3, 3, 2, 0], attn_interval=4,
                          vision=dict(proj="qwen3vl_merger", hidden=32, layers=2, heads=2, ff=96,
                                      patch=16, n_pos=64, merge=2, eps=1e-6,
                                      mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])),
}
HYBRID_ARCHS = ("qwen35", "qwen35moe", "qwen3next")   # Gated DeltaNet + gated attention
MOE_ARCHS = ("qwen3moe", "qwen35moe", "qwen3next", "qwen2moe")
DENSE_ARCHS = ("qwen2", "qwen3", "qwen2vl")            # tensor_specs (non-hybrid, non-MoE)

# A few real GPT-2/Qwen-style merges ("Ġ" is the byte-level encoding of a space)
MERGES = ["Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r",
          "Ġ s", "a t", "Ġ w", "Ġ o", "e n", "Ġ c", "i t", "i s"]

# Qwen2.5 added tokens at ids 151643.. (text, type)
QWEN_SPECIALS = [
    ("<|endoftext|>", TT_CONTROL), ("<|im_start|>", TT_CONTROL), ("<|im_end|>", TT_CONTROL),
    ("<|object_ref_start|>", TT_CONTROL), ("<|object_ref_end|>", TT_CONTROL),
    ("<|box_start|>", TT_CONTROL), ("<|box_end|>", TT_CONTROL),
    ("<|quad_start|>", TT_CONTROL), ("<|quad_end|>", TT_CONTROL),
    ("<|vision_start|>", TT_CONTROL), ("<|vision_end|>", TT_CONTROL),
    ("<|vision_pad|>", TT_CONTROL), ("<|image_pad|>", TT_CONTROL), ("<|video_pad|>", TT_CONTROL),
    ("<tool_call>", TT_USER_DEFINED), ("</tool_call>", TT_USER_DEFINED),
    ("<|fim_prefix|>", TT_CONTROL), ("<|fim_middle|>", TT_CONTROL), ("<|fim_suffix|>", TT_CONTROL),
    ("<|fim_pad|>", TT_CONTROL), ("<|repo_name|>", TT_CONTROL), ("<|file_sep|>", TT_CONTROL),
]
QWEN_FIRST_SPECIAL = 151643

# Qwen3.5 added tokens at ids 248044..248076 (tokenizer.json of Qwen/Qwen3.5-*).  The
# think/tool tokens are typed USER_DEFINED as for Qwen3 (special: false there).
QWEN35_SPECIALS = [
    ("<|endoftext|>", TT_CONTROL), ("<|im_start|>", TT_CONTROL), ("<|im_end|>", TT_CONTROL),
    ("<|object_ref_start|>", TT_CONTROL), ("<|object_ref_end|>", TT_CONTROL),
    ("<|box_start|>", TT_CONTROL), ("<|box_end|>", TT_CONTROL),
    ("<|quad_start|>", TT_CONTROL), ("<|quad_end|>", TT_CONTROL),
    ("<|vision_start|>", TT_CONTROL), ("<|vision_end|>", TT_CONTROL),
    ("<|vision_pad|>", TT_CONTROL), ("<|image_pad|>", TT_CONTROL), ("<|video_pad|>", TT_CONTROL),
    ("<tool_call>", TT_USER_DEFINED), ("</tool_call>", TT_USER_DEFINED),
    ("<|fim_prefix|>", TT_CONTROL), ("<|fim_middle|>", TT_CONTROL), ("<|fim_suffix|>", TT_CONTROL),
    ("<|fim_pad|>", TT_CONTROL), ("<|repo_name|>", TT_CONTROL), ("<|file_sep|>", TT_CONTROL),
    ("<tool_response>", TT_USER_DEFINED), ("</tool_response>", TT_USER_DEFINED),
    ("<think>", TT_USER_DEFINED), ("</think>", TT_USER_DEFINED),
    ("<|audio_start|>", TT_CONTROL), ("<|audio_end|>", TT_CONTROL), ("<tts_pad>", TT_CONTROL),
    ("<tts_text_bos>", TT_CONTROL), ("<tts_text_eod>", TT_CONTROL),
    ("<tts_text_bos_single>", TT_CONTROL), ("<|audio_pad|>", TT_CONTROL),
]
QWEN35_FIRST_SPECIAL = 248044


def bytes_to_unicode():
    """GPT-2 byte -> printable unicode char mapping (byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def build_vocab(n_vocab, family="qwen2"):
    """Returns (tokens, token_types, merges, special ids dict).

    family "qwen2": Qwen2.5/Qwen3 specials (real ids 151643.. for the real vocab size);
    family "qwen2vl": like "qwen2", but a small vocab gets all 22 Qwen2 specials (vision tokens);
    family "qwen35": the 33 Qwen3.5 specials (real ids 248044.. for vocab >= 248077; for a
    small vocab all 33 follow the base tokens, so <think>, <tool_call> ... exist)."""
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]          # id == byte value
    types = [TT_NORMAL] * 256
    for m in MERGES:
        a, b = m.split(" ")
        tokens.append(a + b)
        types.append(TT_NORMAL)
    n_base = len(tokens)
    if family == "qwen35":
        specials = QWEN35_SPECIALS
        if n_vocab >= QWEN35_FIRST_SPECIAL + len(QWEN35_SPECIALS):  # real Qwen3.5 layout
            first_special = QWEN35_FIRST_SPECIAL
        else:
            first_special = n_base
            if n_vocab == 0:
                n_vocab = n_base + len(specials)
            elif n_vocab < n_base + len(specials):
                raise SystemExit(f"vocab must be 0 or >= {n_base + len(specials)}")
    elif family == "qwen2vl" and n_vocab < QWEN_FIRST_SPECIAL + len(QWEN_SPECIALS):
        # small vocab for a VL model: all 22 Qwen2 specials (incl. <|vision_start|>,
        # <|vision_end|>, <|image_pad|>) follow the base tokens
        specials = QWEN_SPECIALS
        first_special = n_base
        if n_vocab == 0:
            n_vocab = n_base + len(specials)
        elif n_vocab < n_base + len(specials):
            raise SystemExit(f"vocab must be 0 or >= {n_base + len(specials)}")
    elif n_vocab == 0:  # minimal: base + 3 specials
        specials = QWEN_SPECIALS[:3]
        first_special = n_base
        n_vocab = n_base + len(specials)
    elif n_vocab >= QWEN_FIRST_SPECIAL + len(QWEN_SPECIALS):  # real Qwen layout
        specials = QWEN_SPECIALS
        first_special = QWEN_FIRST_SPECIAL
    else:
        specials = QWEN_SPECIALS[:3]
        first_special = n_base
        if n_vocab < n_base + 3:
            raise SystemExit(f"vocab must be 0 or >= {n_base + 3}")
    # filler normal tokens (printable ASCII, unique, unreachable by merges)
    for i in range(n_base, first_special):
        tokens.append(f"~f{i}")
        types.append(TT_NORMAL)
    for text, tt in specials:
        tokens.append(text)
        types.append(tt)
    while len(tokens) < n_vocab:  # unused padding rows, as HF->GGUF conversion does
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(TT_UNUSED)
    assert len(tokens) == n_vocab and len(set(tokens)) == n_vocab
    ids = {t: i for i, t in enumerate(tokens)}
    return tokens, types, list(MERGES), {
        "endoftext": ids["<|endoftext|>"], "im_start": ids["<|im_start|>"], "im_end": ids["<|im_end|>"]}


# ---------------------------------------------------------------- GGUF writer

def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


_SCALAR_FMT = {GGUF_UINT8: "<B", GGUF_INT8: "<b", GGUF_UINT16: "<H", GGUF_INT16: "<h",
               GGUF_UINT32: "<I", GGUF_INT32: "<i", GGUF_FLOAT32: "<f", GGUF_BOOL: "<?",
               GGUF_UINT64: "<Q", GGUF_INT64: "<q", GGUF_FLOAT64: "<d"}


def _value(vtype, v):
    if vtype == GGUF_STRING:
        return _str(v)
    return struct.pack(_SCALAR_FMT[vtype], v)


def encode_kv(key, vtype, value, elem_type=None):
    out = _str(key) + struct.pack("<I", vtype)
    if vtype == GGUF_ARRAY:
        out += struct.pack("<IQ", elem_type, len(value))
        if elem_type == GGUF_STRING:
            out += b"".join(_str(s) for s in value)
        else:
            arr = np.asarray(value, dtype=np.dtype(_SCALAR_FMT[elem_type]))
            out += arr.tobytes()
    else:
        out += _value(vtype, value)
    return out


def tensor_nbytes(shape, gtype):
    n = int(np.prod(shape))
    if gtype == GGML_F32:
        return 4 * n
    if gtype == GGML_F16:
        return 2 * n
    if gtype == GGML_Q8_0:
        assert shape[-1] % QK8_0 == 0, f"Q8_0 needs row length % 32 == 0, got {shape}"
        return n // QK8_0 * (2 + QK8_0)
    raise ValueError(gtype)


def quantize_q8_0(x):
    """llama.cpp quantize_row_q8_0_ref: d = amax/127 (stored fp16), q = roundf(x * (1/d))."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127.0)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    v = x * idv[:, None]
    q = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)  # roundf: half away from 0
    blocks = np.empty(x.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q
    return blocks.tobytes()


def encode_tensor(x, gtype):
    if gtype == GGML_F32:
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if gtype == GGML_F16:
        return np.ascontiguousarray(x, dtype="<f2").tobytes()
    if gtype == GGML_Q8_0:
        return quantize_q8_0(x)
    raise ValueError(gtype)


def pad(n, a=ALIGNMENT):
    return (a - n % a) % a


# ---------------------------------------------------------------- model spec

def tensor_specs(p, wtype):
    """List of (name, numpy shape (rows, cols) / (n,), ggml type, kind).

    numpy shape is row-major [out, in]; GGUF dims are the reverse ([in, out] = ne0, ne1).
    kind: 'w' weight (std), 'b' bias (std), 'n' norm (1 [+ noise]).
    """
    if p["arch"] not in DENSE_ARCHS:
        return tensor_specs_moe_hybrid(p, wtype)
    H, L, nh, nkv, hd, ff, V = p["hidden"], p["layers"], p["heads"], p["kv_heads"], p["head_dim"], p["ff"], p["vocab"]
    q_dim, kv_dim = nh * hd, nkv * hd
    qwen3 = p["arch"] == "qwen3"
    specs = [("token_embd.weight", (V, H), wtype, "w")]
    for i in range(L):
        b = f"blk.{i}."
        specs.append((b + "attn_norm.weight", (H,), GGML_F32, "n"))
        specs.append((b + "attn_q.weight", (q_dim, H), wtype, "w"))
        if not qwen3:
            specs.append((b + "attn_q.bias", (q_dim,), GGML_F32, "b"))
        specs.append((b + "attn_k.weight", (kv_dim, H), wtype, "w"))
        if not qwen3:
            specs.append((b + "attn_k.bias", (kv_dim,), GGML_F32, "b"))
        specs.append((b + "attn_v.weight", (kv_dim, H), wtype, "w"))
        if not qwen3:
            specs.append((b + "attn_v.bias", (kv_dim,), GGML_F32, "b"))
        if qwen3:
            specs.append((b + "attn_q_norm.weight", (hd,), GGML_F32, "n"))
            specs.append((b + "attn_k_norm.weight", (hd,), GGML_F32, "n"))
        specs.append((b + "attn_output.weight", (H, q_dim), wtype, "w"))
        specs.append((b + "ffn_norm.weight", (H,), GGML_F32, "n"))
        specs.append((b + "ffn_gate.weight", (ff, H), wtype, "w"))
        specs.append((b + "ffn_up.weight", (ff, H), wtype, "w"))
        specs.append((b + "ffn_down.weight", (H, ff), wtype, "w"))
    specs.append(("output_norm.weight", (H,), GGML_F32, "n"))
    if not p["tied"]:
        specs.append(("output.weight", (V, H), wtype, "w"))
    return specs


def is_recurrent_layer(p, i):
    """Gated DeltaNet layer?  (layer_types: (i + 1) % full_attention_interval != 0; MTP layers never)."""
    return p["arch"] in HYBRID_ARCHS and i < p["layers"] and (i + 1) % p["attn_interval"] != 0


def tensor_specs_moe_hybrid(p, wtype):
    """qwen3moe / qwen35 / qwen35moe / qwen3next tensors, as llama.cpp's loaders
    (src/models/<arch>.cpp load_arch_tensors) and convert_hf_to_gguf.py produce them.

    Extra kinds: 'conv' (depthwise conv1d kernel), 'ssm_a' (-exp(A_log)), 'dt' (dt_bias)."""
    arch = p["arch"]
    H, L, nh, nkv, hd, ff, V = p["hidden"], p["layers"], p["heads"], p["kv_heads"], p["head_dim"], p["ff"], p["vocab"]
    hybrid, moe = arch in HYBRID_ARCHS, arch in MOE_ARCHS
    F32 = GGML_F32
    specs = [("token_embd.weight", (V, H), wtype, "w")]

    def ffn(b):
        if not moe:
            specs.append((b + "ffn_gate.weight", (ff, H), wtype, "w"))
            specs.append((b + "ffn_up.weight", (ff, H), wtype, "w"))
            specs.append((b + "ffn_down.weight", (H, ff), wtype, "w"))
            return
        E, fe = p["experts"], p["expert_ff"]
        specs.append((b + "ffn_gate_inp.weight", (E, H), F32, "w"))           # router, F32 like the converter
        specs.append((b + "ffn_gate_exps.weight", (E, fe, H), wtype, "w"))    # ggml ne {H, fe, E}
        specs.append((b + "ffn_up_exps.weight", (E, fe, H), wtype, "w"))
        specs.append((b + "ffn_down_exps.weight", (E, H, fe), wtype, "w"))    # ggml ne {fe, H, E}
        if arch != "qwen3moe":  # shared expert + its scalar sigmoid gate (HF shape [1, H])
            fs = p["shared_ff"]
            specs.append((b + "ffn_gate_inp_shexp.weight", (1, H), F32, "w"))
            specs.append((b + "ffn_gate_shexp.weight", (fs, H), wtype, "w"))
            specs.append((b + "ffn_up_shexp.weight", (fs, H), wtype, "w"))
            specs.append((b + "ffn_down_shexp.weight", (H, fs), wtype, "w"))

    def attention(b):
        # hybrid archs: q projection emits [q_h (hd), gate_h (hd)] per head (attn output gate)
        qmul = 2 if hybrid else 1
        specs.append((b + "attn_q.weight", (qmul * nh * hd, H), wtype, "w"))
        if arch == "qwen2moe":
            specs.append((b + "attn_q.bias", (nh * hd,), F32, "b"))
        specs.append((b + "attn_k.weight", (nkv * hd, H), wtype, "w"))
        if arch == "qwen2moe":
            specs.append((b + "attn_k.bias", (nkv * hd,), F32, "b"))
        specs.append((b + "attn_v.weight", (nkv * hd, H), wtype, "w"))
        if arch == "qwen2moe":  # qwen2 attention: q/k/v bias, no q/k norm
            specs.append((b + "attn_v.bias", (nkv * hd,), F32, "b"))
        else:
            specs.append((b + "attn_q_norm.weight", (hd,), F32, "n"))
            specs.append((b + "attn_k_norm.weight", (hd,), F32, "n"))
        specs.append((b + "attn_output.weight", (H, nh * hd), wtype, "w"))

    def delta_net(b):
        nk, nv, dk, K = p["lin_k_heads"], p["lin_v_heads"], p["lin_head_dim"], p["conv_kernel"]
        key_dim, value_dim = nk * dk, nv * dk
        specs.append((b + "attn_qkv.weight", (2 * key_dim + value_dim, H), wtype, "w"))
        specs.append((b + "attn_gate.weight", (value_dim, H), wtype, "w"))        # z
        specs.append((b + "ssm_conv1d.weight", (2 * key_dim + value_dim, K), F32, "conv"))  # ne {K, conv_dim}
        specs.append((b + "ssm_dt.bias", (nv,), F32, "dt"))
        specs.append((b + "ssm_a", (nv,), F32, "ssm_a"))
        if arch == "qwen3next":
            specs.append((b + "ssm_ba.weight", (2 * nv, H), wtype, "w"))  # per k-head group: [b x r, a x r]
        else:
            specs.append((b + "ssm_beta.weight", (nv, H), wtype, "w"))
            specs.append((b + "ssm_alpha.weight", (nv, H), wtype, "w"))
        specs.append((b + "ssm_norm.weight", (dk,), F32, "n"))
        specs.append((b + "ssm_out.weight", (H, value_dim), wtype, "w"))

    n_mtp = p.get("mtp", 0)
    for i in range(L + n_mtp):
        b = f"blk.{i}."
        specs.append((b + "attn_norm.weight", (H,), F32, "n"))
        if arch in ("qwen3moe", "qwen2moe"):
            attention(b)
            specs.append((b + "ffn_norm.weight", (H,), F32, "n"))
            ffn(b)
            continue
        specs.append((b + "post_attention_norm.weight", (H,), F32, "n"))
        if is_recurrent_layer(p, i):
            delta_net(b)
        else:
            attention(b)
        ffn(b)
        if i >= L:  # MTP (next-token prediction) block: full-attention block + nextn tensors
            specs.append((b + "nextn.eh_proj.weight", (H, 2 * H), wtype, "w"))  # ne {2H, H}
            specs.append((b + "nextn.enorm.weight", (H,), F32, "n"))
            specs.append((b + "nextn.hnorm.weight", (H,), F32, "n"))
            specs.append((b + "nextn.shared_head_norm.weight", (H,), F32, "n"))
    specs.append(("output_norm.weight", (H,), F32, "n"))
    if not p["tied"]:
        specs.append(("output.weight", (V, H), wtype, "w"))
    return specs


def make_values(name, shape, kind, seed, std, norm_noise):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    if kind == "n":
        if norm_noise > 0:
            return (1.0 + norm_noise * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
        return np.ones(shape, dtype=np.float32)
    if kind == "conv":   # depthwise Conv1d default init: U(-1/sqrt(K), 1/sqrt(K))
        bound = 1.0 / np.sqrt(shape[-1])
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    if kind == "ssm_a":  # GGUF stores -exp(A_log); A ~ U(1, 16)
        return (-rng.uniform(1.0, 16.0, shape)).astype(np.float32)
    if kind == "dt":     # dt_bias = softplus^-1(dt), dt ~ exp(U(ln 1e-3, ln 1e-1))
        dt = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), shape))
        return np.log(np.expm1(dt)).astype(np.float32)
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= np.float32(std)
    return x


# ---------------------------------------------------------------- mmproj (vision tower)

def vision_tensor_specs(v, proj_dim, wtype):
    """Tensors of the mmproj GGUF: list of (name, numpy shape, ggml type, kind, fan_in).

    Names / shapes as llama.cpp's converter writes them (conversion/qwenvl.py
    Qwen2VLVisionModel, conversion/qwen3vl.py Qwen3VLVisionModel) and tools/mtmd/clip.cpp
    loads them.  numpy shape is [out, in] (GGUF ne reversed).  kinds: 'wf' weight
    N(0, 1/fan_in), 'b' bias N(0, 0.02^2), 'n' norm weight 1 + N(0, vnn^2), 'nb' norm bias
    N(0, vnn^2), 'pos' learned position embedding N(0, 0.5^2)."""
    n, L, ff, P = v["hidden"], v["layers"], v["ff"], v["patch"]
    F32 = GGML_F32
    # the converter keeps patch_embd F32 (F16 for an f16 file) and position_embd always F32
    # (clip.cpp's ggml_interpolate of the position grid needs F32)
    ptype = GGML_F16 if wtype == GGML_F16 else GGML_F32
    q3 = v["proj"] == "qwen3vl_merger"
    specs = []

    def W(name, shape):
        specs.append((name, shape, wtype, "wf", shape[-1]))

    def B(name, k):
        specs.append((name, (k,), F32, "b", 0))

    def N(base, k):  # RMSNorm (2.5-VL: weight only) / LayerNorm (Qwen3-VL / 3.5: weight + bias)
        specs.append((base + ".weight", (k,), F32, "n", 0))
        if q3:
            specs.append((base + ".bias", (k,), F32, "nb", 0))

    # HF Conv3d(3 -> n, kernel (2, P, P), stride (2, P, P), bias: 2.5-VL no, Qwen3-VL yes) split
    # along time into two Conv2d kernels: weight[:, :, 0] -> .weight, weight[:, :, 1] -> .weight.1
    for name in ("v.patch_embd.weight", "v.patch_embd.weight.1"):
        specs.append((name, (n, 3, P, P), ptype, "wf", 2 * 3 * P * P))
    if q3:
        B("v.patch_embd.bias", n)
        specs.append(("v.position_embd.weight", (v["n_pos"], n), F32, "pos", 0))
    for i in range(L):
        b = f"v.blk.{i}."
        N(b + "ln1", n)
        if q3:  # fused qkv kept fused: rows [q (n), k (n), v (n)]
            W(b + "attn_qkv.weight", (3 * n, n))
            B(b + "attn_qkv.bias", 3 * n)
        else:   # the 2.5-VL converter splits visual.blocks.N.attn.qkv into q / k / v
            for t in "qkv":
                W(b + f"attn_{t}.weight", (n, n))
                B(b + f"attn_{t}.bias", n)
        W(b + "attn_out.weight", (n, n))
        B(b + "attn_out.bias", n)
        N(b + "ln2", n)
        if not q3:  # SiLU-gated MLP (gate_proj, up_proj, down_proj, all with bias)
            W(b + "ffn_gate.weight", (ff, n))
            B(b + "ffn_gate.bias", ff)
        W(b + "ffn_up.weight", (ff, n))      # Qwen3-VL: mlp.linear_fc1
        B(b + "ffn_up.bias", ff)
        W(b + "ffn_down.weight", (n, ff))    # Qwen3-VL: mlp.linear_fc2
        B(b + "ffn_down.bias", n)
    N("v.post_ln", n)  # merger.ln_q (RMSNorm) / merger.norm (LayerNorm), per patch, before the 2x2 merge
    m = 4 * n          # spatial_merge_size^2 * hidden
    W("mm.0.weight", (m, m))          # merger.mlp.0 / merger.linear_fc1
    B("mm.0.bias", m)
    W("mm.2.weight", (proj_dim, m))   # merger.mlp.2 / merger.linear_fc2 -> LM hidden size
    B("mm.2.bias", proj_dim)
    return specs


def make_vision_values(name, shape, kind, fan_in, seed, vnn):
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    x = rng.standard_normal(shape, dtype=np.float32)
    if kind == "wf":
        return (x * np.float32(1.0 / np.sqrt(fan_in))).astype(np.float32)
    if kind == "b":
        return (x * np.float32(0.02)).astype(np.float32)
    if kind == "n":
        return (np.float32(1.0) + np.float32(vnn) * x).astype(np.float32)
    if kind == "nb":
        return (np.float32(vnn) * x).astype(np.float32)
    if kind == "pos":
        return (x * np.float32(0.5)).astype(np.float32)
    raise ValueError(kind)


def write_gguf(out, kvs, specs, values):
    """GGUF v3: header, kvs (encoded), tensor infos, aligned data.  specs: (name, shape, gtype, ...);
    values(spec) -> float32 array.  Returns (n_params, total bytes)."""
    infos = []
    offset = 0
    for s in specs:
        name, shape, gtype = s[0], s[1], s[2]
        nb = tensor_nbytes(shape, gtype)
        dims = tuple(reversed(shape))
        infos.append(_str(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims) +
                     struct.pack("<IQ", gtype, offset))
        offset += nb + pad(nb)
    tmp = out + ".tmp"
    n_params = 0
    with open(tmp, "wb") as f:
        f.write(GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(specs), len(kvs)))
        for b in kvs:
            f.write(b)
        for b in infos:
            f.write(b)
        f.write(b"\0" * pad(f.tell()))
        for s in specs:
            x = values(s)
            n_params += x.size
            b = encode_tensor(x, s[2])
            assert len(b) == tensor_nbytes(s[1], s[2])
            f.write(b)
            f.write(b"\0" * pad(len(b)))
        total = f.tell()
    os.replace(tmp, out)
    return n_params, total


def write_mmproj(out, p, preset, type_name, seed, vnn):
    """The vision tower as llama.cpp's convert_hf_to_gguf.py --mmproj writes it (arch "clip")."""
    v = p["vision"]
    wtype = TYPE_BY_NAME[type_name]
    kvs = []

    def kv(key, vtype, value, elem_type=None):
        kvs.append(encode_kv(key, vtype, value, elem_type))

    q3 = v["proj"] == "qwen3vl_merger"
    image_size = int(round(np.sqrt(v["n_pos"]))) * v["patch"] if q3 else v["image_size"]
    kv("general.architecture", GGUF_STRING, "clip")
    kv("general.type", GGUF_STRING, "mmproj")
    kv("general.name", GGUF_STRING, f"random-{preset}-mmproj-{type_name}-seed{seed}")
    kv("general.file_type", GGUF_UINT32, FILE_TYPE[type_name])
    kv("general.alignment", GGUF_UINT32, ALIGNMENT)
    # MmprojModel.set_gguf_parameters
    kv("clip.has_vision_encoder", GGUF_BOOL, True)
    kv("clip.vision.projection_dim", GGUF_UINT32, p["hidden"])       # LM hidden size
    kv("clip.vision.image_size", GGUF_UINT32, image_size)
    kv("clip.vision.patch_size", GGUF_UINT32, v["patch"])
    kv("clip.vision.embedding_length", GGUF_UINT32, v["hidden"])
    kv("clip.vision.feed_forward_length", GGUF_UINT32, v["ff"])
    kv("clip.vision.block_count", GGUF_UINT32, v["layers"])
    kv("clip.vision.attention.head_count", GGUF_UINT32, v["heads"])
    kv("clip.vision.image_mean", GGUF_ARRAY, v["mean"], GGUF_FLOAT32)
    kv("clip.vision.image_std", GGUF_ARRAY, v["std"], GGUF_FLOAT32)
    if q3:  # Qwen3VLVisionModel.set_gguf_parameters
        kv("clip.projector_type", GGUF_STRING, "qwen3vl_merger")
        kv("clip.use_gelu", GGUF_BOOL, True)
        kv("clip.vision.spatial_merge_size", GGUF_UINT32, v["merge"])
        kv("clip.vision.attention.layer_norm_epsilon", GGUF_FLOAT32, v["eps"])
        kv("clip.vision.is_deepstack_layers", GGUF_ARRAY, [False] * v["layers"], GGUF_BOOL)
    else:   # Qwen2VLVisionModel.set_gguf_parameters (model_type qwen2_5_vl)
        kv("clip.projector_type", GGUF_STRING, "qwen2.5vl_merger")
        kv("clip.use_silu", GGUF_BOOL, True)
        kv("clip.vision.n_wa_pattern", GGUF_UINT32, v["wa_pattern"])   # fullatt_block_indexes[0] + 1
        kv("clip.vision.attention.layer_norm_epsilon", GGUF_FLOAT32, v["eps"])

    specs = vision_tensor_specs(v, p["hidden"], wtype)
    n_params, total = write_gguf(out, kvs, specs,
                                 lambda s: make_vision_values(s[0], s[1], s[3], s[4], seed, vnn))
    print(f"wrote {out}: mmproj {v['proj']} type={type_name} params={n_params:,} tensors={len(specs)} "
          f"size={total / 2**20:.2f} MiB", file=sys.stderr)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--type", default="f32", choices=sorted(TYPE_BY_NAME), help="type of 2-D weight tensors")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--std", type=float, default=None,
                    help="std of weights and biases (default 0.02; the VL preset tiny-qwen25vl: 0.125)")
    ap.add_argument("--router-std", type=float, default=None,
                    help="std of the MoE routers (ffn_gate_inp) and shared-expert gates (default: --std)")
    ap.add_argument("--norm-noise", type=float, default=0.0,
                    help="norm weights = 1 + N(0, this); 0 (default) means all ones")
    ap.add_argument("--out", default=None, help="output path (default models/<preset>-<type>[-s<seed>].gguf)")
    ap.add_argument("--list", action="store_true", help="print presets and exit")
    for k in ("hidden", "layers", "heads", "kv_heads", "head_dim", "ff", "vocab", "ctx"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, default=None, help=f"override preset {k}")
    ap.add_argument("--rope-theta", type=float, default=None)
    ap.add_argument("--eps", type=float, default=None)
    ap.add_argument("--arch", choices=["qwen2", "qwen3"], default=None)
    ap.add_argument("--untied", action="store_true", help="write a separate output.weight (lm head)")
    ap.add_argument("--experts", type=int, default=None, help="override preset experts (MoE archs)")
    ap.add_argument("--experts-used", type=int, default=None, help="override preset experts_used (top-k)")
    ap.add_argument("--mtp", type=int, default=0,
                    help="append N MTP (nextn) blocks, as convert_hf_to_gguf.py does by default for "
                         "Qwen3.5 / Qwen3-Next (block_count = layers + N, nextn_predict_layers = N); "
                         "hybrid archs only, llama.cpp skips them unless MTP is requested")
    ap.add_argument("--mmproj-out", default=None,
                    help="VL presets: mmproj output path (default: mmproj-<name of --out> next to it)")
    ap.add_argument("--vision-norm-noise", type=float, default=0.1,
                    help="VL presets: vision norm weights = 1 + N(0, this), LayerNorm biases N(0, this)")
    args = ap.parse_args()

    if args.list:
        for k, v in PRESETS.items():
            print(k, v)
        return

    p = dict(PRESETS[args.preset])
    if args.arch is not None and p["arch"] not in ("qwen2", "qwen3"):
        raise SystemExit("--arch only switches between qwen2 and qwen3 presets")
    for k in ("hidden", "layers", "heads", "kv_heads", "head_dim", "ff", "vocab", "ctx", "rope_theta", "eps", "arch"):
        v = getattr(args, k)
        if v is not None:
            p[k] = v
    if args.untied:
        p["tied"] = False
    std = args.std if args.std is not None else p.get("std", 0.02)
    for k in ("experts", "experts_used"):
        if getattr(args, k) is not None:
            if p["arch"] not in MOE_ARCHS:
                raise SystemExit(f"--{k.replace('_', '-')} needs a MoE arch ({', '.join(MOE_ARCHS)})")
            p[k] = getattr(args, k)
    if args.mtp:
        if p["arch"] not in HYBRID_ARCHS:
            raise SystemExit(f"--mtp needs a hybrid arch ({', '.join(HYBRID_ARCHS)})")
        p["mtp"] = args.mtp
    if p["arch"] in MOE_ARCHS and not 0 < p["experts_used"] <= p["experts"]:
        raise SystemExit("need 0 < experts_used <= experts")
    if p["arch"] in HYBRID_ARCHS:
        if p["lin_v_heads"] % p["lin_k_heads"]:
            raise SystemExit("lin_v_heads must be a multiple of lin_k_heads")
        n_rot = int(p["head_dim"] * p["rot_factor"])
        if n_rot % 2 or n_rot > p["head_dim"]:
            raise SystemExit(f"bad rotary dim {n_rot}")
        if "mrope" in p and sum(p["mrope"]) * 2 != n_rot:
            raise SystemExit(f"mrope sections {p['mrope']} must sum to rotary_dim/2 = {n_rot // 2}")
    if p["arch"] == "qwen2vl" and sum(p["mrope"]) * 2 != p["head_dim"]:
        raise SystemExit(f"mrope sections {p['mrope']} must sum to head_dim/2 = {p['head_dim'] // 2}")
    if "vision" in p:
        vis = p["vision"]
        if vis["hidden"] % vis["heads"] or (vis["hidden"] // vis["heads"]) % 4:
            raise SystemExit("vision head_dim must be a multiple of 4 (4 M-RoPE sections of d_head/4)")
        if vis["ff"] == vis["hidden"]:
            raise SystemExit("vision ff must differ from hidden (clip.cpp swaps ffn_up/ffn_down of "
                             "legacy files when ffn_down ne[0] == n_embd)")
    if p["arch"] in ("qwen2", "qwen2vl", "qwen2moe") and p["head_dim"] * p["heads"] != p["hidden"]:
        raise SystemExit("qwen2 requires head_dim * heads == hidden (llama.cpp derives head_dim from hidden/heads)")
    if p["heads"] % p["kv_heads"]:
        raise SystemExit("heads must be a multiple of kv_heads")

    family = "qwen35" if p["arch"] in ("qwen35", "qwen35moe") else ("qwen2vl" if p["arch"] == "qwen2vl" else "qwen2")
    tokens, ttypes, merges, sp = build_vocab(p["vocab"], family)
    p["vocab"] = len(tokens)
    wtype = TYPE_BY_NAME[args.type]
    arch = p["arch"]

    out = args.out
    if out is None:
        os.makedirs(os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"), exist_ok=True)
        suffix = "" if args.seed == 1234 else f"-s{args.seed}"
        if args.norm_noise > 0:
            suffix += f"-nn{args.norm_noise:g}"
        if p.get("mtp", 0):
            suffix += f"-mtp{p['mtp']}"
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models",
                           f"{args.preset}-{args.type}{suffix}.gguf")

    kvs = []

    def kv(key, vtype, value, elem_type=None):
        kvs.append(encode_kv(key, vtype, value, elem_type))

    kv("general.architecture", GGUF_STRING, arch)
    kv("general.name", GGUF_STRING, f"random-{args.preset}-{args.type}-seed{args.seed}")
    kv("general.file_type", GGUF_UINT32, FILE_TYPE[args.type])
    kv("general.alignment", GGUF_UINT32, ALIGNMENT)
    kv(f"{arch}.context_length", GGUF_UINT32, p["ctx"])
    kv(f"{arch}.embedding_length", GGUF_UINT32, p["hidden"])
    kv(f"{arch}.block_count", GGUF_UINT32, p["layers"] + p.get("mtp", 0))
    if p["ff"] > 0:  # Qwen3.5-MoE has no dense intermediate_size, so its converter writes none
        kv(f"{arch}.feed_forward_length", GGUF_UINT32, p["ff"])
    kv(f"{arch}.attention.head_count", GGUF_UINT32, p["heads"])
    kv(f"{arch}.attention.head_count_kv", GGUF_UINT32, p["kv_heads"])
    if arch not in ("qwen2", "qwen2vl", "qwen2moe"):
        kv(f"{arch}.attention.key_length", GGUF_UINT32, p["head_dim"])
        kv(f"{arch}.attention.value_length", GGUF_UINT32, p["head_dim"])
    kv(f"{arch}.rope.freq_base", GGUF_FLOAT32, p["rope_theta"])
    kv(f"{arch}.attention.layer_norm_rms_epsilon", GGUF_FLOAT32, p["eps"])
    if arch == "qwen2vl":  # Qwen2.5-VL rope_scaling.mrope_section, padded to 4
        kv(f"{arch}.rope.dimension_sections", GGUF_ARRAY, p["mrope"], GGUF_INT32)
    if arch in MOE_ARCHS:
        kv(f"{arch}.expert_count", GGUF_UINT32, p["experts"])
        kv(f"{arch}.expert_used_count", GGUF_UINT32, p["experts_used"])
        kv(f"{arch}.expert_feed_forward_length", GGUF_UINT32, p["expert_ff"])
        if "shared_ff" in p:
            kv(f"{arch}.expert_shared_feed_forward_length", GGUF_UINT32, p["shared_ff"])
    if arch in HYBRID_ARCHS:  # Qwen3NextModel.set_gguf_parameters (+ _Qwen35MRopeMixin)
        n_all = p["layers"] + p.get("mtp", 0)
        if "mrope" in p:
            kv(f"{arch}.rope.dimension_sections", GGUF_ARRAY, p["mrope"], GGUF_INT32)
        kv(f"{arch}.ssm.conv_kernel", GGUF_UINT32, p["conv_kernel"])
        kv(f"{arch}.ssm.state_size", GGUF_UINT32, p["lin_head_dim"])
        kv(f"{arch}.ssm.group_count", GGUF_UINT32, p["lin_k_heads"])
        kv(f"{arch}.ssm.time_step_rank", GGUF_UINT32, p["lin_v_heads"])
        kv(f"{arch}.ssm.inner_size", GGUF_UINT32, p["lin_head_dim"] * p["lin_v_heads"])
        kv(f"{arch}.attention.recurrent_layers", GGUF_ARRAY,
           [is_recurrent_layer(p, i) for i in range(n_all)], GGUF_BOOL)
        kv(f"{arch}.full_attention_interval", GGUF_UINT32, p["attn_interval"])
        kv(f"{arch}.rope.dimension_count", GGUF_UINT32, int(p["head_dim"] * p["rot_factor"]))
        if p.get("mtp", 0):
            kv(f"{arch}.nextn_predict_layers", GGUF_UINT32, p["mtp"])
    kv("tokenizer.ggml.model", GGUF_STRING, "gpt2")
    kv("tokenizer.ggml.pre", GGUF_STRING, "qwen35" if arch in ("qwen35", "qwen35moe") else "qwen2")
    kv("tokenizer.ggml.tokens", GGUF_ARRAY, tokens, GGUF_STRING)
    kv("tokenizer.ggml.token_type", GGUF_ARRAY, ttypes, GGUF_INT32)
    kv("tokenizer.ggml.merges", GGUF_ARRAY, merges, GGUF_STRING)
    kv("tokenizer.ggml.eos_token_id", GGUF_UINT32, sp["im_end"])
    kv("tokenizer.ggml.padding_token_id", GGUF_UINT32, sp["endoftext"])
    kv("tokenizer.ggml.bos_token_id", GGUF_UINT32, sp["endoftext"])
    kv("tokenizer.ggml.add_bos_token", GGUF_BOOL, False)
    if arch in ("qwen35", "qwen35moe"):  # ChatML + Qwen3.5's generation prompt (thinking on by default)
        kv("tokenizer.chat_template", GGUF_STRING,
           "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
           "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
           "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}"
           "{% else %}{{ '<think>\n' }}{% endif %}{% endif %}")
    else:
        kv("tokenizer.chat_template", GGUF_STRING,
           "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
           "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

    specs = tensor_specs(p, wtype)
    infos = []
    offset = 0
    for name, shape, gtype, kind in specs:
        nb = tensor_nbytes(shape, gtype)
        dims = tuple(reversed(shape))  # ne0 = innermost (row length)
        info = _str(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims) + \
            struct.pack("<IQ", gtype, offset)
        infos.append(info)
        offset += nb + pad(nb)

    t0 = time.time()
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(specs), len(kvs)))
        for b in kvs:
            f.write(b)
        for b in infos:
            f.write(b)
        f.write(b"\0" * pad(f.tell()))
        data_start = f.tell()
        n_params = 0
        for name, shape, gtype, kind in specs:
            rstd = args.router_std if args.router_std is not None and "ffn_gate_inp" in name else std
            x = make_values(name, shape, kind, args.seed, rstd, args.norm_noise)
            n_params += x.size
            b = encode_tensor(x, gtype)
            assert len(b) == tensor_nbytes(shape, gtype)
            f.write(b)
            f.write(b"\0" * pad(len(b)))
        total = f.tell()
    os.replace(tmp, out)
    print(f"wrote {out}: arch={arch} type={args.type} params={n_params:,} tensors={len(specs)} "
          f"vocab={p['vocab']} size={total / 2**20:.1f} MiB (data {(total - data_start) / 2**20:.1f} MiB) "
          f"in {time.time() - t0:.1f}s", file=sys.stderr)
    print(out)
    if "vision" in p:
        mm_out = args.mmproj_out or os.path.join(os.path.dirname(os.path.abspath(out)),
                                                 "mmproj-" + os.path.basename(out))
        print(write_mmproj(mm_out, p, args.preset, args.type, args.seed, args.vision_norm_noise))


if __name__ == "__main__":
    main()
