#!/usr/bin/env python3
"""(added) python3 crosscheck.py GGUF HF_FOLDER SPEC.json SUMMARY.json REFDIR [--f16 GGUF16 --q8 GGUF8]
float64 ref_forward (GGUF) and hf_forward (HF folder, chunked and recurrent) over prompt + greedy ids vs
llama.cpp's F32 prefill and incremental logits; prints JSON with worst abs / rel (rel = max|d| / max|ref| per row)."""
import json, sys, os
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_forward, hf_forward

gg, hf, specp, sump, refdir = sys.argv[1:6]
spec = {c["name"]: c for c in json.load(open(specp))}
summ = {c["name"]: c for c in json.load(open(sump))["cases"]}
g = ref_forward.GGUF(gg)
hfm = hf_forward.Model(hf)
hfr = hf_forward.Model(hf, recurrent=True)
out = {}
def cmp(a, b):
    d = np.abs(a - b).max(axis=1)
    return float(d.max()), float((d / np.abs(b).max(axis=1)).max())
for name, c in spec.items():
    s = summ[name]
    ids = c["prompt_ids"] + s.get("greedy_generated_ids", [])
    n, V = s["prefill_shape"]
    pre = np.fromfile(os.path.join(refdir, f"{name}.prefill_logits.f32"), "<f4").reshape(n, V).astype(np.float64)
    r = {}
    refs = {"ref_forward_gguf": ref_forward.forward(g, ids), "hf_forward_chunked": hfm.forward(ids), "hf_forward_recurrent": hfr.forward(ids)}
    for k, L in refs.items():
        L = np.asarray(L)
        r[k + "_vs_prefill"] = cmp(pre, L[:n])
        p = os.path.join(refdir, f"{name}.incremental_logits.f32")
        if os.path.exists(p):
            inc = np.fromfile(p, "<f4").reshape(len(ids), V).astype(np.float64)
            r[k + "_vs_incremental"] = cmp(inc, L)
            # greedy ids from the float64 logits
            r[k + "_greedy_equal"] = [int(np.argmax(L[i])) for i in range(n - 1, len(ids) - 1)] == s["greedy_generated_ids"]
    for q in ("f16", "q8_0"):
        p = os.path.join(refdir, f"{name}.prefill_logits_{q}.f32")
        if os.path.exists(p):
            x = np.fromfile(p, "<f4").reshape(n, V).astype(np.float64)
            L = np.asarray(refs["ref_forward_gguf"])[:n]
            r[f"llama_{q}_vs_f64_f32weights"] = cmp(x, L)
            qg = os.path.join(os.path.dirname(gg), os.path.basename(gg).replace("f32", q))
            if os.path.exists(qg):
                for emu in (False, True):
                    ref_forward.EMULATE_ACT = emu
                    Lq = np.asarray(ref_forward.forward(ref_forward.GGUF(qg), c["prompt_ids"]))
                    r[f"llama_{q}_vs_f64_{q}weights" + ("_emulated_act_rounding" if emu else "")] = cmp(x, Lq)
                ref_forward.EMULATE_ACT = False
            r[f"llama_{q}_argmax_equal_positions"] = int(sum(int(np.argmax(x[i])) == int(np.argmax(L[i])) for i in range(n)))
    out[name] = r
print(json.dumps(out, indent=1))
