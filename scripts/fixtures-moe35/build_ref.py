#!/usr/bin/env python3
"""Assemble a fixture folder: python3 build_ref.py FX_DIR NAME(moe35|next) DEST
FX_DIR holds what README.md's commands made: NAME-{f32,q8_0}.gguf, hf-NAME-* folders, spec-NAME.json,
sum-NAME-{f32,q8_0}.json (gen_ref.mjs summaries), out-NAME-{f32,q8_0}/ (logits), cc-NAME.json (crosscheck.py)."""
import hashlib, json, os, shutil, sys
fx, name, dest = sys.argv[1:]
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
layout = {"moe35": {"": "hf-moe35-fused", "per-expert": "hf-moe35-per"},
          "next": {"": "hf-next-per", "fused": "hf-next-fused"}}[name]
os.makedirs(dest, exist_ok=True)
files = {}
for t in ("f32", "q8_0"):
    shutil.copy(f"{fx}/{name}-{t}.gguf", f"{dest}/model-{t}.gguf")
    for f in os.listdir(f"{fx}/out-{name}-{t}"):
        if f.endswith(".f32"):
            shutil.copy(f"{fx}/out-{name}-{t}/{f}", f"{dest}/{f.replace('incremental_logits', 'incremental_logits_q8_0') if t == 'q8_0' else f}")
for sub, src in layout.items():
    os.makedirs(os.path.join(dest, sub), exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(f"{fx}/{src}/{f}", os.path.join(dest, sub, f))
spec = json.load(open(f"{fx}/spec-{name}.json"))
summ = {t: {c["name"]: c for c in json.load(open(f"{fx}/sum-{name}-{t}.json"))["cases"]} for t in ("f32", "q8_0")}
cc = json.load(open(f"{fx}/cc-{name}.json"))
cases = []
for c in spec:
    n, s, q = c["name"], summ["f32"][c["name"]], summ["q8_0"][c["name"]]
    N, V = s["prefill_shape"]
    cases.append({
        "name": n, "prompt_ids": c["prompt_ids"],
        "greedy_generated_ids": s["greedy_generated_ids"], "greedy_generated_ids_q8_0": q["greedy_generated_ids"],
        "prefill_logits_file": {"path": f"{n}.prefill_logits.f32", "shape": [N, V], "gguf": "model-f32.gguf"},
        "incremental_logits_file": {"path": f"{n}.incremental_logits.f32", "shape": s["incremental_shape"], "gguf": "model-f32.gguf",
                                    "ids": "prompt_ids + greedy_generated_ids, one token per call"},
        "prefill_logits_q8_0_file": {"path": f"{n}.prefill_logits_q8_0.f32", "shape": [N, V], "gguf": "model-q8_0.gguf"},
        "incremental_logits_q8_0_file": {"path": f"{n}.incremental_logits_q8_0.f32", "shape": q["incremental_shape"], "gguf": "model-q8_0.gguf",
                                         "ids": "prompt_ids + greedy_generated_ids_q8_0, one token per call"},
        "llama_prefill_vs_incremental_max_abs_diff": {"f32": s["prefill_vs_incremental_max_abs_diff"], "q8_0": q["prefill_vs_incremental_max_abs_diff"]},
        "greedy_min_top1_top2_margin": {"f32": s["greedy_min_top1_top2_margin"], "q8_0": q["greedy_min_top1_top2_margin"]},
        "float64_crosscheck_vs_incremental_f32": cc[n],
    })
cfg = json.load(open(f"{dest}/config.json"))
ref = {
    "reference": "llama.cpp as shipped prebuilt in node-llama-cpp 3.22.1 (binary release v0.5.0; bundled source commit "
                 "de3ff815ea7d559ee917f063901b8986f038abc6), CPU, 1 thread, F32 KV cache, flash attention off. Prefill: one "
                 "controlledEvaluate call over the prompt (batch = context), logits at every position; incremental: a fresh "
                 "context, one call per token over prompt + 8 greedy ids (argmax of llama.cpp's logits).",
    "hf_layouts": {sub or ".": src for sub, src in layout.items()},
    "sha256": {os.path.relpath(os.path.join(r, f), dest): sha(os.path.join(r, f)) for r, _, fs in os.walk(dest) for f in sorted(fs)
               if f.endswith((".gguf", ".safetensors"))},
    "cases": cases,
}
json.dump(ref, open(f"{dest}/reference.json", "w"), indent=1)
print(json.dumps(ref["sha256"], indent=1))
