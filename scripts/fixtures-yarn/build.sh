#!/bin/bash
# Build test/fixtures/models/qwen3-tiny-yarn: a tiny random Qwen3 with YaRN rope scaling (factor 4 over
# an original context of 64) as a GGUF file and an HF folder, and llama.cpp's logits for a prompt that
# runs past the original context. Run in a scratch folder holding copies of shared/peer's make_gguf.py,
# gguf_to_hf.py and common.mjs, scripts/fixtures-qwen35/gen_ref.mjs, and node_modules with
# node-llama-cpp 3.22.1 (as bench/peer.ts installs it), after `npm run build` in the repository:
#   bash REPO/scripts/fixtures-yarn/build.sh REPO/test/fixtures/models/qwen3-tiny-yarn
set -euo pipefail
DEST=$1; HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DEST" work
python3 make_gguf.py --preset tiny-qwen3 --type f32 --ctx 64 --ff 64 --seed 4321 --norm-noise 0.2 --out work/base-f32.gguf
node "$HERE/add_yarn.mjs" work/base-f32.gguf "$DEST/model-f32.gguf" 4 64
python3 gguf_to_hf.py "$DEST/model-f32.gguf" work/hf
# HF Qwen configs keep max_position_embeddings at the original context and name the scaling here
python3 - work/hf/config.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
cp work/hf/config.json work/hf/model.safetensors "$DEST/"
python3 -c "
import json, numpy as np
rng = np.random.default_rng(6464)
print(json.dumps([{'name': n, 'prompt_ids': [int(x) for x in rng.integers(0, 275, L)]} for n, L in zip('AB', (9, 120))]))" > work/spec.json
node gen_ref.mjs "$DEST/model-f32.gguf" work/spec.json "$DEST" --incremental > work/ref.json
python3 - "$DEST" work/spec.json work/ref.json <<'PY'
import json, sys
dest, spec, ref = sys.argv[1:4]
spec = {c["name"]: c for c in json.load(open(spec))}
ref = json.load(open(ref))
cases = [{"name": c["name"], "prompt_ids": spec[c["name"]]["prompt_ids"], "greedy_generated_ids": c["greedy_generated_ids"],
          "greedy_min_top1_top2_margin": c["greedy_min_top1_top2_margin"],
          "prefill_logits_file": {"path": f"{c['name']}.prefill_logits.f32", "shape": c["prefill_shape"]},
          "incremental_logits_file": {"path": f"{c['name']}.incremental_logits.f32", "shape": c["incremental_shape"]}}
         for c in ref["cases"]]
json.dump({"_provenance": {
    "what": "make_gguf.py --preset tiny-qwen3 --type f32 --ctx 64 --ff 64 --seed 4321 --norm-noise 0.2 (random weights), "
            "then qwen3.rope.scaling.{type=yarn, factor=4, original_context_length=64} added (add_yarn.mjs); HF copy by "
            "gguf_to_hf.py with rope_scaling {rope_type: yarn, factor: 4.0, original_max_position_embeddings: 64}. "
            "See scripts/fixtures-yarn/build.sh and ../PROVENANCE.md.",
    "reference_implementation": f"llama.cpp release {ref['llama']['release']} (commit de3ff815ea7d559ee917f063901b8986f038abc6) via node-llama-cpp 3.22.1 (gen_ref.mjs, 1 thread, F32 KV cache): "
            "prefill = one controlledEvaluate over the prompt, logits at every position; incremental = one call per "
            "token over prompt + 8 greedy ids"},
    "cases": cases}, open(f"{dest}/reference.json", "w"), indent=1)
PY
gzip -9 -f "$DEST/model-f32.gguf" "$DEST/model.safetensors" "$DEST"/*.f32
