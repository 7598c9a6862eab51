#!/usr/bin/env python3
"""(added) assemble a fixture folder's reference.json.  python3 build_ref.py DEST KIND(tiny|tied)"""
import json, sys, os, hashlib, shutil
import numpy as np
dest, kind = sys.argv[1], sys.argv[2]
fx = "/tmp/fx"
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
spec = json.load(open(f"{fx}/spec305.json"))
summ = {c["name"]: c for c in json.load(open(f"{fx}/sum-{kind}-f32.json"))["cases"]}
cc = json.load(open(f"{fx}/cc-{kind}.json"))
refdir = f"{fx}/out-{kind}"
os.makedirs(dest, exist_ok=True)
for f in os.listdir(refdir):
    shutil.copy(os.path.join(refdir, f), dest)
cfg = json.load(open(os.path.join(dest, "config.json")))
LL = ("llama.cpp (ggml, MIT) as shipped prebuilt in node-llama-cpp 3.22.1 (@node-llama-cpp/linux-x64 3.22.1, binary release "
      "tag v0.5.0; source bundle commit de3ff815ea7d559ee917f063901b8986f038abc6), CPU, 1 thread, F32 KV cache, flash-attn off, "
      "llama.cpp's default fused Gated DeltaNet op. Prefill: one controlledEvaluate call (batch = context >= prompt), logits "
      "requested at every position. Incremental: a fresh context, one controlledEvaluate call per token.")
if kind == "tiny":
    what = ("Tiny synthetic Qwen3.5 (arch qwen35 / Qwen3_5ForConditionalGeneration) hybrid model: hidden 128, 4 layers "
            "(linear, linear, linear, full attention), DeltaNet nk=2 key heads / nv=4 value heads (dk=dv=32, conv K=4; "
            "GGUF in llama.cpp's tiled V-head order, HF in grouped order), gated attention 4 q heads / 2 kv heads, "
            "head_dim 64, partial rotary 0.25 (rotary_dim 16, interleaved M-RoPE sections [3,3,2]), ff 448, UNTIED lm head, "
            "zero-centred norms with noise (norm-noise 0.2), plus one MTP block (GGUF blk.4.nextn.* / HF mtp.*, unused for "
            "decoding), and 3 small model.visual.* tensors in the HF file (a vision tower to skip). Vocab 305 (256 byte "
            "tokens, 16 merges, 33 Qwen3.5 added tokens at 272..304: 272=<|endoftext|>, 273=<|im_start|>, 274=<|im_end|>); "
            "embedding rows = tokenizer size = 305.")
    hf_what = "HF folder in the released Qwen3.5 VL layout: model.language_model.*, mtp.*, model.visual.* (3 dummy tensors), F32"
else:
    what = ("Tiny synthetic Qwen3.5 text model (arch qwen35 / Qwen3_5ForCausalLM, model_type qwen3_5_text): as qwen35-tiny but "
            "DeltaNet nk = nv = 2 (no V-head reorder), TIED embeddings (no output.weight / lm_head), no MTP, norm-noise 0.2. "
            "Vocab 305 = tokenizer size. With tied random embeddings the greedy token repeats the last prompt token.")
    hf_what = "HF folder in the plain text layout: model.*, F32, no lm_head.weight"
cases = []
for c in spec:
    n = c["name"]; s = summ[n]; r = cc[n]
    N, V = s["prefill_shape"]
    case = {"name": n, "prompt_ids": c["prompt_ids"], "n_generate": len(s["greedy_generated_ids"]),
            "greedy_generated_ids": s["greedy_generated_ids"],
            "numpy_float64_crosscheck": {
                "prefill_max_abs_diff": max(r["ref_forward_gguf_vs_prefill"][0], r["hf_forward_chunked_vs_prefill"][0], r["hf_forward_recurrent_vs_prefill"][0]),
                "incremental_max_abs_diff": max(r["ref_forward_gguf_vs_incremental"][0], r["hf_forward_chunked_vs_incremental"][0], r["hf_forward_recurrent_vs_incremental"][0]),
                "max_rel_diff": max(v[1] for k, v in r.items() if isinstance(v, list) and k.startswith(("ref_", "hf_"))),
                "greedy_ids_equal": all(v for k, v in r.items() if k.endswith("greedy_equal")),
                "greedy_path_min_top1_top2_margin": s["greedy_min_top1_top2_margin"]},
            "suggested_tolerance": {"atol": 1e-3, "rtol": 1e-4, "note": "llama.cpp f32 vs float64 numpy differ by ~1e-6; an f32 TS engine should be within ~1e-4 absolute"},
            "prefill_logits_file": {"path": f"{n}.prefill_logits.f32", "dtype": "float32 little-endian", "shape": [N, V],
                                    "meaning": "row i = logits after processing prompt_ids[0..i] in ONE batched forward (all positions requested), model-f32.gguf"},
            "incremental_logits_file": {"path": f"{n}.incremental_logits.f32", "dtype": "float32 little-endian", "shape": s["incremental_shape"],
                                        "meaning": "row i = logits after feeding token i of (prompt_ids + greedy_generated_ids) one token per decode call, through the KV / recurrent cache, model-f32.gguf"}}
    for q in ("f16", "q8_0"):
        p = f"{n}.prefill_logits_{q}.f32"
        if os.path.exists(os.path.join(dest, p)):
            x = np.fromfile(os.path.join(dest, p), "<f4").reshape(N, V)
            f32 = np.fromfile(os.path.join(dest, f"{n}.prefill_logits.f32"), "<f4").reshape(N, V)
            case[f"prefill_logits_{q}_file"] = {
                "path": p, "dtype": "float32 little-endian", "shape": [N, V], "gguf": f"model-{q}.gguf",
                "meaning": f"as prefill_logits_file but llama.cpp on model-{q}.gguf (same weights stored {q.upper()}); llama.cpp also rounds matmul activations to {'f16' if q == 'f16' else 'q8_0 blocks'}",
                "max_abs_diff_vs_f32_prefill": float(np.abs(x - f32).max()),
                "argmax_equal_to_f32_prefill_positions": int((x.argmax(1) == f32.argmax(1)).sum()),
                "float64_crosscheck_max_abs_diff": {"same_dequantised_weights": r[f"llama_{q}_vs_f64_{q}weights"][0],
                                                    "same_weights_with_llama_activation_rounding_emulated": r[f"llama_{q}_vs_f64_{q}weights_emulated_act_rounding"][0]},
                "suggested_tolerance": {"atol": 2e-3 if q == "f16" else 6e-2, "note": "an engine that dequantises exactly and keeps f32 activations differs from llama.cpp by about the float64 'same_dequantised_weights' figure; compare top-k / argmax rather than tight atol"}}
    cases.append(case)
files = {"model-f32.gguf": "F32"} | ({"model-f16.gguf": "F16", "model-q8_0.gguf": "Q8_0"} if kind == "tiny" else {})
ref = {"_provenance": {
    "what": what,
    "weights": "Random weights generated with make_gguf.py (numpy, seeded per tensor: seed 1234, crc32(name)); NOT an official Qwen checkpoint - real FORMAT, synthetic values. The F16/Q8_0 GGUFs are the same float32 values stored at lower precision. The HF folder was derived from model-f32.gguf by gguf_to_hf.py (the inverse of convert_hf_to_gguf.py: norms w = gguf - 1, A_log = log(-ssm_a), conv [C,1,K], V heads tiled -> grouped). See ../PROVENANCE.md for commands.",
    "hf_folder": hf_what,
    "reference_implementation": LL,
    "independent_crosscheck": "float64 numpy: ref_forward.py on model-f32.gguf (recurrent DeltaNet), hf_forward.py on the HF folder (transformers conventions; chunked and recurrent DeltaNet), over prompt + greedy ids; max abs/rel per case below; same greedy ids.",
    "license": "Generated data.",
    "model_safetensors_sha256": sha(os.path.join(dest, "model.safetensors")),
    "config_sha256": sha(os.path.join(dest, "config.json")),
    "gguf_file": {"path": "model-f32.gguf", "sha256": sha(os.path.join(dest, "model-f32.gguf")), "note": "the exact file llama.cpp evaluated for prefill_logits_file / incremental_logits_file"},
    "gguf_files": {k: {"sha256": sha(os.path.join(dest, k)), "weight_type": v} for k, v in files.items()}},
    "config": cfg, "cases": cases}
json.dump(ref, open(os.path.join(dest, "reference.json"), "w"), indent=1, ensure_ascii=False)
print("ok", dest)
