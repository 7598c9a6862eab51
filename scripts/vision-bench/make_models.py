#!/usr/bin/env python3
# Random-weight F16 mmproj files with the real Qwen2.5-VL-3B and Qwen3.5-0.8B tower shapes, plus the small
# language models of matching width that libmtmd needs to load them (only the image encode is timed).
# Usage: python3 make_models.py PEER_DIR OUT_DIR   (PEER_DIR: a copy of ../shared/peer, for make_gguf.py)
import sys
PEER, OUT = sys.argv[1], sys.argv[2]
sys.path.insert(0, PEER)
import make_gguf as mg

V25 = dict(proj="qwen2.5vl_merger", hidden=1280, layers=32, heads=16, ff=3420, patch=14, image_size=560,
           wa_pattern=8, eps=1e-6, mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711])
V35 = dict(proj="qwen3vl_merger", hidden=768, layers=12, heads=12, ff=3072, patch=16, n_pos=2304, merge=2,
           eps=1e-6, mean=[0.5] * 3, std=[0.5] * 3)
mg.write_mmproj(f"{OUT}/mmproj-qwen25vl-3b-f16.gguf", {"hidden": 2048, "vision": V25}, "qwen25vl-3b-vision", "f16", 1234, 0.1)
mg.write_mmproj(f"{OUT}/mmproj-qwen35-0.8b-f16.gguf", {"hidden": 1024, "vision": V35}, "qwen35-0.8b-vision", "f16", 1234, 0.1)
mg.PRESETS["bench-qwen25vl-lm"] = dict(arch="qwen2vl", hidden=2048, layers=1, heads=16, kv_heads=2, head_dim=128,
                                       ff=512, vocab=0, ctx=4096, rope_theta=1e6, eps=1e-6, tied=False,
                                       mrope=[16, 24, 24, 0], std=0.02)
p = dict(mg.PRESETS["qwen35-0.8b"]); p.update(layers=4, vocab=0, ff=512, ctx=4096)
mg.PRESETS["bench-qwen35-lm"] = p
for preset, out in (("bench-qwen25vl-lm", "lm-qwen25vl-2048.gguf"), ("bench-qwen35-lm", "lm-qwen35-1024.gguf")):
    sys.argv = ["make_gguf.py", "--preset", preset, "--type", "f16", "--out", OUT + "/" + out]
    mg.main()
