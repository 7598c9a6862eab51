#!/bin/bash
# Build one MoE fixture folder: PRESET DEST. Run in a scratch copy of shared/peer (its ref_forward.py,
# gen_ref.mjs from scripts/fixtures-qwen35, and an npm install of node-llama-cpp) with this folder's
# scripts copied in:  ./build_moe_fixture.sh tiny-qwen3moe OUT/qwen3moe-tiny
set -euo pipefail
PRESET=$1; DEST=$2
mkdir -p work/$PRESET "$DEST/fused"
for t in f32 q8_0; do python3 make_gguf_moe.py --preset $PRESET --type $t --seed 1234 --norm-noise 0.2 --out "$DEST/model-$t.gguf"; done
python3 gguf_to_hf_moe.py "$DEST/model-f32.gguf" "$DEST"                          # one tensor per expert
python3 gguf_to_hf_moe.py "$DEST/model-f32.gguf" "$DEST/fused" --fused-experts    # gate_up_proj / down_proj
python3 - "$DEST/model-f32.gguf" > work/$PRESET/spec.json <<'PY'
import json, sys, numpy as np
sys.path.insert(0, '.')
from ref_forward import GGUF
V = GGUF(sys.argv[1]).tensors["token_embd.weight"][0][1]
rng = np.random.default_rng(1212)
print(json.dumps([{"name": n, "prompt_ids": [int(x) for x in rng.integers(0, V, L)]} for n, L in zip("ABCD", (5, 12, 23, 37))]))
PY
node gen_ref.mjs "$DEST/model-f32.gguf" work/$PRESET/spec.json work/$PRESET/f32 --incremental > work/$PRESET/f32.json
node gen_ref.mjs "$DEST/model-q8_0.gguf" work/$PRESET/spec.json work/$PRESET/q8_0 --incremental > work/$PRESET/q8_0.json
for c in A B C D; do
  cp work/$PRESET/f32/$c.prefill_logits.f32 work/$PRESET/f32/$c.incremental_logits.f32 "$DEST/"
  cp work/$PRESET/q8_0/$c.prefill_logits.f32 "$DEST/$c.prefill_logits_q8_0.f32"
  cp work/$PRESET/q8_0/$c.incremental_logits.f32 "$DEST/$c.incremental_logits_q8_0.f32"
done
python3 build_reference.py "$DEST" work/$PRESET/spec.json work/$PRESET/f32.json work/$PRESET/q8_0.json $PRESET
