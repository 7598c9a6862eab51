#!/usr/bin/env python3
"""reference.json of a MoE fixture folder from gen_ref.mjs's summaries (build_moe_fixture.sh).
  python3 build_reference.py DEST SPEC.json F32_SUMMARY.json Q8_0_SUMMARY.json PRESET"""
import json, sys

dest, spec, f32, q8, preset = sys.argv[1:6]
spec = {c["name"]: c for c in json.load(open(spec))}
f32, q8 = json.load(open(f32)), json.load(open(q8))
q8c = {c["name"]: c for c in q8["cases"]}
cases = []
for c in f32["cases"]:
    n = c["name"]
    cases.append({
        "name": n, "prompt_ids": spec[n]["prompt_ids"], "greedy_generated_ids": c["greedy_generated_ids"],
        "greedy_min_top1_top2_margin": c["greedy_min_top1_top2_margin"],
        "prefill_logits_file": {"path": f"{n}.prefill_logits.f32", "shape": c["prefill_shape"]},
        "incremental_logits_file": {"path": f"{n}.incremental_logits.f32", "shape": c["incremental_shape"]},
        "prefill_logits_q8_0_file": {"path": f"{n}.prefill_logits_q8_0.f32", "shape": q8c[n]["prefill_shape"]},
        "incremental_logits_q8_0_file": {"path": f"{n}.incremental_logits_q8_0.f32", "shape": q8c[n]["incremental_shape"]},
        "greedy_generated_ids_q8_0": q8c[n]["greedy_generated_ids"],
    })
out = {"_provenance": {
    "what": f"make_gguf_moe.py --preset {preset} --seed 1234 --norm-noise 0.2 (random weights), F32 and Q8_0 GGUF; "
            "HF copies by gguf_to_hf_moe.py: model.safetensors one tensor per expert, fused/ with "
            "mlp.experts.gate_up_proj + down_proj. See ../PROVENANCE.md.",
    "reference_implementation": f"llama.cpp {f32['llama']} via node-llama-cpp 3.22.1 (gen_ref.mjs, 1 thread, F32 KV cache): "
            "prefill = one controlledEvaluate over the prompt, logits at every position; incremental = one call per "
            "token over prompt + 8 greedy ids (argmax of llama.cpp's logits on that file)"},
    "cases": cases}
json.dump(out, open(f"{dest}/reference.json", "w"), indent=1)
