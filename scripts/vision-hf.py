#!/usr/bin/env python3
"""Write a tiny vision-language model pair (language model GGUF + mmproj GGUF from
shared/peer/make_gguf.py --preset tiny-qwen25vl | tiny-qwen35vl) as a Hugging Face folder with
transformers' own tensor names, layout and config nesting: the same weights as the GGUFs, so the
llama.cpp oracle outputs in test/fixtures/vision/oracle hold for the folder too.  numpy only.

  python3 scripts/vision-hf.py --peer ../shared/peer LM.gguf MMPROJ.gguf OUT_DIR

Language model: shared/peer/gguf_to_hf.py's Converter (the inverse of llama.cpp's converter);
the qwen2vl GGUF is read as qwen2 (same tensors) and its config rewritten.
Names (transformers src/transformers/models/qwen2_5_vl/modeling_qwen2_5_vl.py and
qwen3_5/modeling_qwen3_5.py; llama.cpp conversion/qwenvl.py Qwen2VLVisionModel and
conversion/qwen3vl.py Qwen3VLVisionModel map them to the mmproj names, VISION.md section 3):
  Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration, released checkpoint layout): model.* + lm_head
    for the language model, visual.* for the tower; config.json flat (text fields at top level,
    vision_config nested, rope_scaling.mrope_section).
  Qwen3.5 (Qwen3_5ForConditionalGeneration): model.language_model.*, model.visual.*, lm_head;
    config.json with text_config and vision_config nested.
  tower: patch_embed.proj.weight [n, 3, 2, P, P] = the two temporal kernels v.patch_embd.weight(.1)
    stacked on axis 2 (+ .bias, 3.5); pos_embed.weight (3.5); blocks.{i}.norm1/norm2 (RMSNorm weight
    2.5, LayerNorm weight+bias 3.5); attn.qkv = rows [q; k; v] (llama.cpp splits it for 2.5);
    attn.proj; mlp.gate_proj/up_proj/down_proj (2.5) or mlp.linear_fc1/linear_fc2 (3.5);
    merger.ln_q + merger.mlp.0/mlp.2 (2.5) or merger.norm + merger.linear_fc1/linear_fc2 (3.5).
Also: preprocessor_config.json (the released files' fields), tokenizer.json + tokenizer_config.json
from the GGUF vocabulary, and the released chat template (shared/qwen/chat-templates,
shared/qwen/tokenizers/qwen3.5).
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

QWEN2_REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
QWEN35_REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+"
                "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


class Vision:
    """Plan of the tower's HF tensors from an mmproj GGUF (F32: values copied exactly)."""

    def __init__(self, g):
        self.g = g
        self.used = set()
        self.plan = []
        self.kv = g.kv

    def load(self, name):
        self.used.add(name)
        return np.asarray(self.g.get(name), dtype=np.float32)

    def shape(self, name):
        return tuple(reversed(self.g.tensors[name][0]))

    def copy(self, hf, name):
        self.used.add(name)
        self.plan.append((hf, self.shape(name), lambda: self.load(name)))

    def cat(self, hf, names):
        shapes = [self.shape(n) for n in names]
        self.used.update(names)
        shp = (sum(s[0] for s in shapes),) + shapes[0][1:]
        self.plan.append((hf, shp, lambda: np.concatenate([self.load(n) for n in names], axis=0)))

    def build(self, pre, q3):
        n_layers = int(self.kv["clip.vision.block_count"])
        w0 = self.shape("v.patch_embd.weight")   # [n, 3, P, P]
        self.used.update(["v.patch_embd.weight", "v.patch_embd.weight.1"])
        self.plan.append((pre + "patch_embed.proj.weight", (w0[0], w0[1], 2, w0[2], w0[3]),
                          lambda: np.stack([self.load("v.patch_embd.weight"),
                                            self.load("v.patch_embd.weight.1")], axis=2)))
        if q3:
            self.copy(pre + "patch_embed.proj.bias", "v.patch_embd.bias")
            self.copy(pre + "pos_embed.weight", "v.position_embd.weight")
        for i in range(n_layers):
            b, p = f"v.blk.{i}.", f"{pre}blocks.{i}."
            for hf, gg in (("norm1", "ln1"), ("norm2", "ln2")):
                self.copy(f"{p}{hf}.weight", f"{b}{gg}.weight")
                if q3:
                    self.copy(f"{p}{hf}.bias", f"{b}{gg}.bias")
            for s in ("weight", "bias"):
                if q3:
                    self.copy(f"{p}attn.qkv.{s}", f"{b}attn_qkv.{s}")
                    self.copy(f"{p}mlp.linear_fc1.{s}", f"{b}ffn_up.{s}")
                    self.copy(f"{p}mlp.linear_fc2.{s}", f"{b}ffn_down.{s}")
                else:
                    self.cat(f"{p}attn.qkv.{s}", [f"{b}attn_q.{s}", f"{b}attn_k.{s}", f"{b}attn_v.{s}"])
                    for n in ("gate", "up", "down"):
                        self.copy(f"{p}mlp.{n}_proj.{s}", f"{b}ffn_{n}.{s}")
                self.copy(f"{p}attn.proj.{s}", f"{b}attn_out.{s}")
        if q3:
            self.copy(pre + "merger.norm.weight", "v.post_ln.weight")
            self.copy(pre + "merger.norm.bias", "v.post_ln.bias")
        else:
            self.copy(pre + "merger.ln_q.weight", "v.post_ln.weight")
        for s in ("weight", "bias"):
            self.copy(pre + ("merger.linear_fc1." if q3 else "merger.mlp.0.") + s, f"mm.0.{s}")
            self.copy(pre + ("merger.linear_fc2." if q3 else "merger.mlp.2.") + s, f"mm.2.{s}")
        left = sorted(set(self.g.tensors) - self.used)
        if left:
            raise SystemExit(f"mmproj tensors not mapped to HF: {left}")


def tokenizer_files(g, regex, out):
    tokens = g.kv["tokenizer.ggml.tokens"]
    types = [int(x) for x in g.kv["tokenizer.ggml.token_type"]]
    vocab, added = {}, []
    for i, (t, ty) in enumerate(zip(tokens, types)):
        if ty == 1:
            vocab[t] = i
        elif ty in (3, 4):   # control (special) / user-defined (e.g. <think>: not special)
            added.append({"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": ty == 3})
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}, bl]},
        "post_processor": bl, "decoder": bl,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": list(g.kv["tokenizer.ggml.merges"])},
    }
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    eos = tokens[int(g.kv["tokenizer.ggml.eos_token_id"])]
    cfg = {"add_bos_token": False, "add_prefix_space": False, "bos_token": None, "eos_token": eos,
           "pad_token": "<|endoftext|>", "errors": "replace", "model_max_length": 4096,
           "tokenizer_class": "Qwen2Tokenizer", "clean_up_tokenization_spaces": False,
           "split_special_tokens": False,
           "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added}}
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", required=True, help="shared/peer (make_gguf.py, gguf_to_hf.py, ref_forward.py)")
    ap.add_argument("--qwen", default=None, help="shared/qwen (chat templates); default PEER/../qwen")
    ap.add_argument("lm")
    ap.add_argument("mmproj")
    ap.add_argument("out")
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.peer))
    from gguf_to_hf import Converter, write_safetensors  # noqa: E402
    from ref_forward import GGUF  # noqa: E402
    qwen = a.qwen or os.path.join(a.peer, "..", "qwen")

    g, m = GGUF(a.lm), GGUF(a.mmproj)
    arch = g.kv["general.architecture"]
    if m.kv.get("general.architecture") != "clip":
        raise SystemExit(f"{a.mmproj}: not an mmproj file")
    proj = m.kv["clip.projector_type"]
    q3 = arch == "qwen35"
    if (arch, proj) not in (("qwen2vl", "qwen2.5vl_merger"), ("qwen35", "qwen3vl_merger")):
        raise SystemExit(f"unsupported pair: LM {arch}, projector {proj}")
    tokens = g.kv["tokenizer.ggml.tokens"]
    tid = tokens.index

    if q3:
        conv = Converter(g, vl_layout=True)
    else:   # qwen2vl = qwen2's tensors and keys (+ rope.dimension_sections): convert as qwen2
        g.kv = dict(g.kv)
        for k in list(g.kv):
            if k.startswith("qwen2vl."):
                g.kv["qwen2." + k[len("qwen2vl."):]] = g.kv[k]
        g.kv["general.architecture"] = "qwen2"
        conv = Converter(g)
    conv.build()
    cfg = conv.config()
    vis = Vision(m)
    vis.build("model.visual." if q3 else "visual.", q3)

    kv = m.kv
    n = int(kv["clip.vision.embedding_length"])
    patch = int(kv["clip.vision.patch_size"])
    mean = [float(str(np.float32(x))) for x in kv["clip.vision.image_mean"]]
    std = [float(str(np.float32(x))) for x in kv["clip.vision.image_std"]]
    vc = {"depth": int(kv["clip.vision.block_count"]), "hidden_size": n,
          "intermediate_size": int(kv["clip.vision.feed_forward_length"]),
          "num_heads": int(kv["clip.vision.attention.head_count"]),
          "out_hidden_size": int(kv["clip.vision.projection_dim"]), "patch_size": patch,
          "spatial_merge_size": 2, "temporal_patch_size": 2}
    if q3:
        vc = {"deepstack_visual_indexes": [], **vc, "hidden_act": "gelu_pytorch_tanh", "in_channels": 3,
              "initializer_range": 0.02, "model_type": "qwen3_5_vision",
              "num_position_embeddings": int(vis.shape("v.position_embd.weight")[0])}
        cfg["vision_config"] = dict(sorted(vc.items()))
        pre = {"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": patch,
               "temporal_patch_size": 2, "merge_size": 2, "image_mean": mean, "image_std": std,
               "processor_class": "Qwen3VLProcessor", "image_processor_type": "Qwen2VLImageProcessorFast"}
    else:
        wa = int(kv["clip.vision.n_wa_pattern"])
        vc.update({"hidden_act": "silu", "in_chans": 3, "spatial_patch_size": patch, "window_size": 112,
                   "fullatt_block_indexes": [i for i in range(vc["depth"]) if (i + 1) % wa == 0],
                   "tokens_per_second": 2})
        sections = [int(x) for x in g.kv["qwen2vl.rope.dimension_sections"][:3]]
        c = cfg
        cfg = {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0,
               "bos_token_id": tid("<|endoftext|>"), "eos_token_id": tid("<|im_end|>"),
               "vision_start_token_id": tid("<|vision_start|>"), "vision_end_token_id": tid("<|vision_end|>"),
               "vision_token_id": tid("<|vision_pad|>"), "image_token_id": tid("<|image_pad|>"),
               "video_token_id": tid("<|video_pad|>"), "hidden_act": "silu", "hidden_size": c["hidden_size"],
               "initializer_range": 0.02, "intermediate_size": c["intermediate_size"],
               "max_position_embeddings": c["max_position_embeddings"], "max_window_layers": c["max_window_layers"],
               "model_type": "qwen2_5_vl", "num_attention_heads": c["num_attention_heads"],
               "num_hidden_layers": c["num_hidden_layers"], "num_key_value_heads": c["num_key_value_heads"],
               "rms_norm_eps": c["rms_norm_eps"], "rope_theta": c["rope_theta"], "sliding_window": 32768,
               "tie_word_embeddings": c["tie_word_embeddings"], "torch_dtype": "float32", "use_cache": True,
               "use_sliding_window": False, "vision_config": vc,
               "rope_scaling": {"type": "mrope", "mrope_section": sections}, "vocab_size": c["vocab_size"]}
        pre = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": patch, "temporal_patch_size": 2,
               "merge_size": 2, "image_mean": mean, "image_std": std,
               "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}

    os.makedirs(a.out, exist_ok=True)
    plan = conv.plan + vis.plan
    names = [p[0] for p in plan]
    assert len(names) == len(set(names)), "duplicate HF tensor names"
    nbytes = write_safetensors(os.path.join(a.out, "model.safetensors"), plan, {"format": "pt"})
    for name, obj in (("config.json", cfg), ("preprocessor_config.json", pre)):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
    tokenizer_files(g, QWEN35_REGEX if q3 else QWEN2_REGEX, a.out)
    if q3:
        shutil.copyfile(os.path.join(qwen, "tokenizers", "qwen3.5", "chat_template.jinja"),
                        os.path.join(a.out, "chat_template.jinja"))
    else:
        tpl = open(os.path.join(qwen, "chat-templates", "qwen2-vl-and-qwen2.5-vl-instruct.jinja")).read()
        with open(os.path.join(a.out, "chat_template.json"), "w") as f:
            json.dump({"chat_template": tpl}, f, indent=2)
            f.write("\n")
    print(f"wrote {a.out}: {cfg['model_type']}, {len(plan)} tensors ({len(vis.plan)} vision), "
          f"{nbytes / 2**20:.2f} MiB F32", file=sys.stderr)


if __name__ == "__main__":
    main()
