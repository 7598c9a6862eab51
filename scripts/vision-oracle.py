#!/usr/bin/env python3
"""Reshape one mtmd_oracle JSON (llama.cpp's reference outputs for a text + one image prompt,
shared/peer/mtmd_oracle.cpp) into the vision fixture layout that test/vision/fixtures.ts reads,
gzip-compressed.

  python3 scripts/vision-oracle.py RAW.json OUT.json.gz --preset tiny-qwen25vl --type f32 --image img-168x140.png

Fixture fields (see test/fixtures/vision/PROVENANCE.md):
  prompt            the prompt text as given to mtmd (with the media marker)
  marker            "<__media__>" (mtmd's default marker; mtmd puts <|vision_start|> before and
                    <|vision_end|> after the image chunk, as text tokens)
  prompt_tokens     one entry per decoder position: token id, or -1 for an image row
  pieces            the text of each token (null for image rows)
  image             {file, width, height (as decoded), nx, ny (merged-token grid, nx columns),
                    n_tokens = nx*ny, n_pos (positions the chunk advances = max(nx, ny)),
                    start (index of the first image row in prompt_tokens), dim, embd: the image
                    rows, flat row-major [n_tokens * dim] (row r*nx + c = merged token (r, c))}
  positions         [t, h, w, e] M-RoPE position of every prompt entry
  logits            full-vocabulary logits after every prompt entry: number[] for text tokens,
                    null for image rows (llama.cpp does not output logits for embedding rows)
  n_past            first position after the prompt (where generation continues)
  greedy            argmax continuation: tokens and, per step, the position it is decoded at,
                    the argmax, top-10 and full logits (step 0's logits = the last prompt logits)
"""
import argparse
import gzip
import json
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("out")
    ap.add_argument("--preset", required=True)
    ap.add_argument("--type", required=True)
    ap.add_argument("--image", required=True, help="image file name as stored under test/fixtures/vision/images")
    a = ap.parse_args()
    r = json.load(open(a.raw))
    if len(r["images"]) != 1:
        raise SystemExit("one image per oracle run")
    chunks = r["chunks"]
    imgs = [c for c in chunks if c["type"] == "image"]
    if len(imgs) != 1:
        raise SystemExit(f"{a.raw}: expected one image chunk, got {len(imgs)}")
    ic = imgs[0]
    toks = r["prompt_tokens"]
    start = toks.index(-1)
    n = ic["n_tokens"]
    assert toks[start:start + n] == [-1] * n and n == ic["nx"] * ic["ny"]
    dim = r["n_embd_inp"]
    embd = [v for row in ic["embd"] for v in row]
    assert len(embd) == n * dim
    pieces = []
    for c in chunks:
        pieces += c["pieces"] if c["type"] == "text" else [None] * c["n_tokens"]
    logits = [None] * len(toks)
    for e in r["prompt_logits"]:
        logits[e["index"]] = e["logits"]
    missing = [i for i, t in enumerate(toks) if t >= 0 and logits[i] is None]
    if missing:
        raise SystemExit(f"{a.raw}: no logits at text positions {missing} (run mtmd_oracle with --all-logits)")
    steps = r["greedy_steps"]
    out = {
        "preset": a.preset,
        "type": a.type,
        "source": "llama.cpp de3ff81 (node-llama-cpp 3.22.1 bundle), shared/peer/mtmd_oracle, CPU, F32 KV cache, "
                  "flash attention off, 2 threads",
        "prompt": r["prompt"],
        "marker": "<__media__>",
        "n_vocab": r["n_vocab"],
        "prompt_tokens": toks,
        "pieces": pieces,
        "image": {
            "file": a.image,
            "width": r["images"][0]["width"],
            "height": r["images"][0]["height"],
            "nx": ic["nx"],
            "ny": ic["ny"],
            "n_tokens": n,
            "n_pos": ic["n_pos"],
            "start": start,
            "dim": dim,
            "embd": embd,
        },
        "positions": r["prompt_positions_thwe"],
        "logits": logits,
        "n_past": r["n_past_after_prompt"],
        "greedy": {
            "tokens": r["greedy_tokens"],
            "pieces": r["greedy_pieces"],
            "steps": [{k: s[k] for k in ("pos", "argmax", "top", "logits") if k in s} for s in steps],
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    data = json.dumps(out, separators=(",", ":")).encode()
    # mtime 0: the same outputs give the same .gz bytes
    with open(a.out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0, filename="") as g:
        g.write(data)


if __name__ == "__main__":
    main()
