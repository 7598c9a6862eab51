#!/usr/bin/env bash
# Image encode time, qwen.ts next to llama.cpp, in one run: a 448x448 image through the Qwen3.5-0.8B and
# Qwen2.5-VL-3B vision towers (random F16 weights, real shapes), the two engines alternating each rep.
# Needs llama.cpp built by ../shared/peer/build_llama.sh (LLAMA_SRC, LLAMA_BUILD) and `npm run build`.
# Usage: [NODE=...] LLAMA_SRC=/tmp/llama/src LLAMA_BUILD=/tmp/llama/build scripts/vision-bench/run.sh [OUT_DIR] [THREADS] [REPS]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$HERE/../.."
OUT="${1:-/tmp/vbench}"
THREADS="${2:-2}"
REPS="${3:-2}"
NODE="${NODE:-node}" # the Node binary for our side (e.g. .peer/node24/package/bin/node)
PEER="${PEER:-/tmp/peer}" # a copy of ../shared/peer (make_gguf.py, make_png.py)
mkdir -p "$OUT"
[ -f "$OUT/mmproj-qwen35-0.8b-f16.gguf" ] || python3 "$HERE/make_models.py" "$PEER" "$OUT"
[ -f "$OUT/img-448x448.png" ] || python3 "$PEER/make_png.py" --width 448 --height 448 --out "$OUT/img-448x448.png"
if [ ! -x "$OUT/enc_time" ]; then
  g++ -O2 -std=c++17 "$HERE/enc_time.cpp" -o "$OUT/enc_time" -I"$LLAMA_SRC/include" -I"$LLAMA_SRC/ggml/include" \
    -I"$LLAMA_SRC/tools/mtmd" -L"$LLAMA_BUILD/bin" -lmtmd -lllama -lggml -lggml-base -Wl,-rpath,"$LLAMA_BUILD/bin"
fi
echo "threads $THREADS, reps $REPS, $(nproc) cores, node $("$NODE" --version)"
for pair in "qwen35-0.8b:lm-qwen35-1024.gguf" "qwen25vl-3b:lm-qwen25vl-2048.gguf"; do
  IFS=: read -r name lm <<<"$pair"
  mm="$OUT/mmproj-$name-f16.gguf"
  for r in $(seq "$REPS"); do
    ours=$("$NODE" "$ROOT/dist/bench/vision.js" --mmproj "$mm" --size 448 --threads "$THREADS" --runs 1 | grep -o 'encode_ms: [0-9]*')
    llama=$("$OUT/enc_time" "$OUT/$lm" "$mm" "$OUT/img-448x448.png" "$THREADS" 1 | grep -o 'wall [0-9]* ms, cpu [0-9]* ms')
    echo "$name rep $r: qwen.ts $ours | llama.cpp $llama | load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
