#!/usr/bin/env python3
"""float64 cross-check of llama.cpp's reference logits: ref_forward.py on the GGUF and hf_forward.py
(chunked and recurrent DeltaNet) on each HF copy, over prompt + greedy ids of every case.
  python3 crosscheck.py PEER_DIR SPEC.json SUMMARY.json OUTDIR GGUF HF_DIR...   (prints JSON)"""
import json, os, subprocess, sys, tempfile
import numpy as np
peer, spec, summ, outdir, gguf, *hfs = sys.argv[1:]
summ = {c["name"]: c for c in json.load(open(summ))["cases"]}
res = {}
for c in json.load(open(spec)):
    n = c["name"]; ids = c["prompt_ids"] + summ[n]["greedy_generated_ids"]
    want = np.fromfile(os.path.join(outdir, f"{n}.incremental_logits.f32"), "<f4").reshape(len(ids), -1)
    runs = [("ref_forward_gguf", ["ref_forward.py", gguf])]
    for h in hfs:
        runs += [(f"hf_forward_{os.path.basename(h)}", ["hf_forward.py", h]), (f"hf_forward_{os.path.basename(h)}_recurrent", ["hf_forward.py", h, "--recurrent"])]
    r = {}
    for key, cmd in runs:
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, os.path.join(peer, cmd[0]), *cmd[1:], "--tokens", ",".join(map(str, ids)), "--all", "--out", f.name],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            j = json.load(open(f.name))
            got = np.array(j["logits"] if "logits" in j else [p["logits"] for p in j["positions"]], dtype=np.float64)
        d = np.abs(got - want)
        r[key] = {"max_abs": float(d.max()), "max_rel": float((d.max(1) / np.abs(want).max(1)).max()),
                  "greedy_equal": bool((got[len(c["prompt_ids"]) - 1:-1].argmax(1) == np.array(summ[n]["greedy_generated_ids"])).all())}
    res[n] = r
print(json.dumps(res, indent=1))
