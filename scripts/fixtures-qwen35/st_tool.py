#!/usr/bin/env python3
"""(added) small safetensors rewriter, numpy only.
  python3 st_tool.py add-visual FOLDER      add 3 small F32 model.visual.* tensors (seeded) to FOLDER/model.safetensors
  python3 st_tool.py to-bf16 FOLDER         store every tensor whose values are exactly bfloat16 as BF16 (others stay F32)
Tensors are written in name order, header padded with spaces to a multiple of 8, __metadata__ {"format": "pt"}."""
import json, os, struct, sys
import numpy as np

def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    meta = h.pop("__metadata__", {"format": "pt"})
    out = {}
    for k, e in h.items():
        a, b = e["data_offsets"]
        raw = data[a:b]
        if e["dtype"] == "F32":
            x = np.frombuffer(raw, "<f4").reshape(e["shape"])
        elif e["dtype"] == "BF16":
            x = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(e["shape"])
        else:
            raise SystemExit(e["dtype"])
        out[k] = (e["dtype"], x)
    return meta, out

def write(path, meta, tensors):
    header, off, blobs = {"__metadata__": meta}, 0, []
    for k in sorted(tensors):
        dt, x = tensors[k]
        x = np.ascontiguousarray(x, dtype=np.float32)
        if dt == "BF16":
            u = x.view(np.uint32)
            assert np.all(u & 0xFFFF == 0), k
            b = (u >> 16).astype("<u2").tobytes()
        else:
            b = x.astype("<f4").tobytes()
        header[k] = {"dtype": dt, "shape": list(x.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hb))); f.write(hb)
        for b in blobs: f.write(b)
    os.replace(path + ".tmp", path)

def main():
    cmd, folder = sys.argv[1], sys.argv[2]
    p = os.path.join(folder, "model.safetensors")
    meta, t = read(p)
    if cmd == "add-visual":
        rng = np.random.default_rng(35)
        # shapes as the real Qwen3.5 vision tower names them, but tiny (hidden 32, patch 16, temporal 2)
        t["model.visual.patch_embed.proj.weight"] = ("F32", (0.02 * rng.standard_normal((32, 3, 2, 16, 16))).astype(np.float32))
        t["model.visual.blocks.0.norm1.weight"] = ("F32", (1 + 0.1 * rng.standard_normal(32)).astype(np.float32))
        t["model.visual.blocks.0.norm1.bias"] = ("F32", (0.1 * rng.standard_normal(32)).astype(np.float32))
    elif cmd == "to-bf16":
        for k, (dt, x) in list(t.items()):
            if dt == "F32" and np.all(x.view(np.uint32) & 0xFFFF == 0):
                t[k] = ("BF16", x)
    write(p, meta, t)
    print({k: (dt, list(x.shape)) for k, (dt, x) in t.items() if "visual" in k or dt == "BF16" or x.size > 100000})

main()
