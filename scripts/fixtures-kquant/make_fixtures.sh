#!/bin/sh
# Regenerates test/fixtures/models/qwen3-tiny-k256 (see test/fixtures/models/PROVENANCE.md).
# Run from a scratch copy of shared/peer after its npm install (node_modules/node-llama-cpp 3.22.1):
#   sh /path/to/repo/scripts/fixtures-kquant/make_fixtures.sh /path/to/repo
set -e
REPO=$1
HERE=$REPO/scripts/fixtures-kquant
OUT=$REPO/test/fixtures/models/qwen3-tiny-k256
mkdir -p "$OUT" work
# every matrix row 256 wide (hidden 256, 4 x 64 query heads, ff 256): K-quant blocks fit, no fallbacks
python3 make_gguf.py --preset tiny-qwen3 --hidden 256 --layers 1 --heads 4 --kv-heads 2 --head-dim 64 --ff 256 \
  --vocab 320 --type f32 --seed 1234 --norm-noise 0.2 --out work/model-f32.gguf
for spec in q2_k:--pure q3_k_m: q5_k_s:--pure iq4_nl:--pure iq4_xs:--pure; do
  t=${spec%%:*}; flag=${spec#*:}
  name=$t${flag:+-pure}
  python3 "$HERE/quantize.py" work/model-f32.gguf "$OUT/model-$name.gguf" $t $flag
  for c in A B; do
    ids=$(node -e "const r=require('$REPO/test/fixtures/models/qwen3-tiny-tied/reference.json');process.stdout.write(r.cases.find(c=>c.name==='$c').prompt_ids.join(','))")
    node logits.mjs "$OUT/model-$name.gguf" --tokens "$ids" --all --out work/$c.$name.json
    node "$HERE/json_to_f32.mjs" work/$c.$name.json "$OUT/$c.prefill_logits.$name.f32"
  done
done
python3 "$HERE/ggml_vectors.py" "$REPO/test/fixtures/quant/ggml-kquant"
