#!/usr/bin/env bash
# Regenerate test/fixtures/vision/** (see its PROVENANCE.md): tiny Qwen2.5-VL / Qwen3.5 language
# model + mmproj GGUF pairs (random weights), test images, llama.cpp oracle outputs, HF copies.
#
#   PEER=../shared/peer LLAMA_SRC=/tmp/llama/src LLAMA_BUILD=/tmp/llama/build scripts/vision-fixtures.sh [f32] [q8_0]
#
# Needs: python3 with numpy (make_gguf.py, gguf_to_hf.py), /usr/bin/python3 with Pillow (the
# JPEG files), cwebp/dwebp (Debian webp), gcc, and LLAMA_BUILD/bin/mtmd_oracle built by
# PEER/build_llama.sh from LLAMA_SRC (llama.cpp de3ff81, the source node-llama-cpp 3.22.1 ships).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER="${PEER:-$ROOT/../shared/peer}"
LLAMA_SRC="${LLAMA_SRC:-/tmp/llama/src}"
LLAMA_BUILD="${LLAMA_BUILD:-/tmp/llama/build}"
ORACLE="$LLAMA_BUILD/bin/mtmd_oracle"
OUT="$ROOT/test/fixtures/vision"
if [ $# -gt 0 ]; then TYPES=("$@"); else TYPES=(f32 q8_0); fi
SEED=1234
PROMPT="Describe this image."
mkdir -p "$OUT/images" "$OUT/oracle"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# stb_dump: a file decoded by the stb_image that llama.cpp's mtmd-helper uses (3 channels), raw RGB
if [ ! -x "$LLAMA_BUILD/stb_dump" ]; then
  printf '%s\n' '#define STB_IMAGE_IMPLEMENTATION' '#include "stb_image.h"' '#include <stdio.h>' \
    'int main(int argc, char **argv) {' '  int w, h, n;' \
    '  unsigned char *d = argc == 3 ? stbi_load(argv[1], &w, &h, &n, 3) : NULL;' '  if (!d) return 1;' \
    '  FILE *f = fopen(argv[2], "wb");' '  fwrite(d, 1, (size_t)w * h * 3, f);' '  fclose(f);' '  return 0;' '}' \
    >"$TMP/stb_dump.c"
  gcc -O2 -I"$LLAMA_SRC/vendor/stb" "$TMP/stb_dump.c" -o "$LLAMA_BUILD/stb_dump" -lm
fi

# images: make_png.py's deterministic pattern; JPEG (Pillow, quality 90, 4:2:0, baseline) and
# WebP (lossless = the PNG's pixels; lossy q80 + dwebp's decode as reference) of the same pixels
for s in 56x84 168x140 160x96 130x60; do
  python3 "$PEER/make_png.py" --width "${s%x*}" --height "${s#*x}" --out "$OUT/images/img-$s.png" >/dev/null
done
/usr/bin/python3 -c '
import sys
from PIL import Image
for s in ("168x140", "160x96"):
    p = sys.argv[1] + "/img-" + s
    Image.open(p + ".png").convert("RGB").save(p + ".jpg", quality=90, subsampling=2, optimize=False, progressive=False)
' "$OUT/images"
for s in 168x140 160x96; do
  cwebp -quiet -lossless -exact -z 9 "$OUT/images/img-$s.png" -o "$OUT/images/img-$s.webp"
  "$LLAMA_BUILD/stb_dump" "$OUT/images/img-$s.jpg" "$TMP/stb.rgb"
  gzip -9nc "$TMP/stb.rgb" >"$OUT/images/img-$s.jpg.stb.rgb.gz"
done
cwebp -quiet -q 80 -m 4 "$OUT/images/img-160x96.png" -o "$OUT/images/img-160x96-lossy.webp"
dwebp -quiet "$OUT/images/img-160x96-lossy.webp" -ppm -o "$TMP/lossy.ppm"
tail -c $((160 * 96 * 3)) "$TMP/lossy.ppm" | gzip -9n >"$OUT/images/img-160x96-lossy.webp.dwebp.rgb.gz"

# images per preset: two the smart resize changes (56x84: below min_pixels, upscaled + padded;
# 130x60: rounded, downscaled + padded), one kept as is with a non-square merged grid, and that
# one again as JPEG (decoded by stb_image)
declare -A IMAGES=(
  [tiny-qwen25vl]="img-56x84.png img-168x140.png img-130x60.png img-168x140.jpg"
  [tiny-qwen35vl]="img-56x84.png img-160x96.png img-130x60.png img-160x96.jpg"
)
for preset in tiny-qwen25vl tiny-qwen35vl; do
  dir="$OUT/$preset"
  mkdir -p "$dir"
  for t in "${TYPES[@]}"; do
    python3 "$PEER/make_gguf.py" --preset "$preset" --type "$t" --seed "$SEED" \
      --out "$TMP/model-$t.gguf" --mmproj-out "$TMP/mmproj-$t.gguf" >/dev/null 2>&1
    for img in ${IMAGES[$preset]}; do
      stem="${img#img-}"
      stem="${stem%.png}"
      stem="${stem/.jpg/-jpg}"
      "$ORACLE" -m "$TMP/model-$t.gguf" --mmproj "$TMP/mmproj-$t.gguf" --image "$OUT/images/$img" \
        --chatml "$PROMPT" --all-logits -n 4 --gen-logits -t 2 -o "$TMP/raw.json" 2>/dev/null
      python3 "$ROOT/scripts/vision-oracle.py" "$TMP/raw.json" "$OUT/oracle/$preset-$t-$stem.json.gz" \
        --preset "$preset" --type "$t" --image "$img"
    done
    # files over 1 MiB are stored gzip'd (test/vision/fixtures.ts unpacks them)
    for f in model mmproj; do
      if [ "$(stat -c %s "$TMP/$f-$t.gguf")" -gt 1048576 ]; then
        gzip -9nc "$TMP/$f-$t.gguf" >"$dir/$f-$t.gguf.gz"
        rm -f "$dir/$f-$t.gguf"
      else
        cp "$TMP/$f-$t.gguf" "$dir/$f-$t.gguf"
        rm -f "$dir/$f-$t.gguf.gz"
      fi
    done
    if [ "$t" = f32 ] && [ -f "$ROOT/scripts/vision-hf.py" ]; then
      rm -rf "$dir/hf"
      python3 "$ROOT/scripts/vision-hf.py" --peer "$PEER" "$TMP/model-$t.gguf" "$TMP/mmproj-$t.gguf" "$dir/hf"
      if [ "$(stat -c %s "$dir/hf/model.safetensors")" -gt 1048576 ]; then gzip -9n "$dir/hf/model.safetensors"; fi
    fi
  done
done
