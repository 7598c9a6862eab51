#!/usr/bin/env python3
"""Tiny Qwen3.5-MoE (qwen35moe) and Qwen3-Next (qwen3next) GGUFs for qwen.ts's fixtures.

  python3 make_gguf_moe.py --preset moe35-tiny|next-tiny|moe35-realvocab [make_gguf35.py flags ...]

A wrapper around ../fixtures-qwen35/make_gguf35.py (the team's make_gguf.py with a few added flags):
it only registers the presets below and runs that script's main(), so the tensors, metadata and
tokenizer are written exactly as make_gguf.py writes them for the tiny-qwen35moe / tiny-qwen3next
presets (which llama.cpp loads). The presets are smaller than those (hidden 64, experts of 32 rows)
so the fixtures stay small, and every size differs from the others so a swapped dimension fails:
8 experts, top-3, expert width 32, shared-expert width 64; DeltaNet nk 2 / nv 4 (V-head order matters).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures-qwen35"))
import make_gguf35 as m  # noqa: E402

COMMON = dict(hidden=64, layers=4, heads=4, kv_heads=2, head_dim=32, ff=0, vocab=0, ctx=4096, eps=1e-6,
              tied=False, lin_k_heads=2, lin_v_heads=4, lin_head_dim=16, conv_kernel=4, rot_factor=0.25,
              attn_interval=4, experts=8, experts_used=3, expert_ff=32, shared_ff=64)
m.PRESETS["moe35-tiny"] = dict(COMMON, arch="qwen35moe", rope_theta=1e7, mrope=[2, 1, 1, 0])
m.PRESETS["next-tiny"] = dict(COMMON, arch="qwen3next", rope_theta=5e6, ff=96)  # Next writes a (unused) dense width
# the chat fixture: Qwen3.5's real 248,320-row vocabulary on a very small body
m.PRESETS["moe35-realvocab"] = dict(COMMON, arch="qwen35moe", rope_theta=1e7, hidden=16, heads=2, kv_heads=1,
                                    lin_k_heads=2, lin_v_heads=2, experts=4, experts_used=2, expert_ff=32,
                                    shared_ff=32, mrope=[2, 1, 1, 0])

if __name__ == "__main__":
    m.main()
