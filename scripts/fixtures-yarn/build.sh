#!/bin/bash
# Build a YaRN fixture: a tiny random model with YaRN rope scaling (factor 4 over an original context
# of 64) as a GGUF file and an HF copy, and llama.cpp's logits for prompts that run past the original
# context. Run in a scratch folder holding copies of shared/peer's make_gguf.py, gguf_to_hf.py,
# ref_forward.py and common.mjs, scripts/fixtures-qwen35/gen_ref.mjs, and node_modules with
# node-llama-cpp 3.22.1 (as bench/peer.ts installs it), after `npm run build` in the repository:
#   bash REPO/scripts/fixtures-yarn/build.sh REPO/test/fixtures/models/qwen3-tiny-yarn tiny-qwen3 --ff 64
#   bash REPO/scripts/fixtures-yarn/build.sh REPO/test/fixtures/models/qwen35-tiny-yarn tiny-qwen35 --ff 64 --hidden 64 --heads 2 --kv-heads 1
# The Qwen3.5 folder keeps only the HF config.json (its weights would double the fixture; the qwen3
# one checks HF weights with YaRN).
set -euo pipefail
DEST=$1; PRESET=$2; shift 2; HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "work/$PRESET"; mkdir -p "$DEST" "work/$PRESET"; W=work/$PRESET
python3 make_gguf.py --preset "$PRESET" --type f32 --ctx 64 --seed 4321 --norm-noise 0.2 "$@" --out $W/base-f32.gguf
node "$HERE/add_yarn.mjs" $W/base-f32.gguf "$DEST/model-f32.gguf" 4 64
python3 gguf_to_hf.py "$DEST/model-f32.gguf" $W/hf
# HF Qwen configs keep max_position_embeddings at the original context and name the scaling in
# rope_scaling (transformers 4) or, for Qwen3.5, in rope_parameters (transformers 5)
python3 - $W/hf/config.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
if "rope_parameters" in c: c["rope_parameters"].update(yarn)
else: c["rope_scaling"] = yarn
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
cp $W/hf/config.json "$DEST/"
case $PRESET in *qwen35*) ;; *) cp $W/hf/model.safetensors "$DEST/" ;; esac
python3 - "$DEST/model-f32.gguf" > $W/spec.json <<'PY'
import json, sys, numpy as np
sys.path.insert(0, '.')
from ref_forward import GGUF
V = GGUF(sys.argv[1]).tensors["token_embd.weight"][0][1]
rng = np.random.default_rng(6464)
print(json.dumps([{"name": n, "prompt_ids": [int(x) for x in rng.integers(0, V, L)]} for n, L in zip("AB", (9, 120))]))
PY
node gen_ref.mjs "$DEST/model-f32.gguf" $W/spec.json "$DEST" --incremental > $W/ref.json
python3 - "$DEST" $W/spec.json $W/ref.json "$PRESET $*" <<'PY'
import json, sys
dest, spec, ref, args = sys.argv[1:5]
spec = {c["name"]: c for c in json.load(open(spec))}
ref = json.load(open(ref))
cases = [{"name": c["name"], "prompt_ids": spec[c["name"]]["prompt_ids"], "greedy_generated_ids": c["greedy_generated_ids"],
          "greedy_min_top1_top2_margin": c["greedy_min_top1_top2_margin"],
          "prefill_logits_file": {"path": f"{c['name']}.prefill_logits.f32", "shape": c["prefill_shape"]},
          "incremental_logits_file": {"path": f"{c['name']}.incremental_logits.f32", "shape": c["incremental_shape"]}}
         for c in ref["cases"]]
json.dump({"_provenance": {
    "what": f"make_gguf.py --preset {args} --type f32 --ctx 64 --seed 4321 --norm-noise 0.2 (random weights), "
            "then rope.scaling.{type=yarn, factor=4, original_context_length=64} added (add_yarn.mjs); HF config by "
            "gguf_to_hf.py with {rope_type: yarn, factor: 4.0, original_max_position_embeddings: 64}. "
            "See scripts/fixtures-yarn/build.sh and ../PROVENANCE.md.",
    "reference_implementation": f"llama.cpp release {ref['llama']['release']} (commit de3ff815ea7d559ee917f063901b8986f038abc6) via node-llama-cpp 3.22.1 (gen_ref.mjs, 1 thread, F32 KV cache): "
            "prefill = one controlledEvaluate over the prompt, logits at every position; incremental = one call per "
            "token over prompt + 8 greedy ids"},
    "cases": cases}, open(f"{dest}/reference.json", "w"), indent=1)
PY
gzip -9 -f "$DEST/model-f32.gguf" "$DEST"/*.f32
[ -f "$DEST/model.safetensors" ] && gzip -9 -f "$DEST/model.safetensors"
true
