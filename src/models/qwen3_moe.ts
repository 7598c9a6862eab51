// Qwen3-MoE (HF model_type "qwen3_moe", GGUF "qwen3moe": Qwen3-30B-A3B, 235B-A22B): Qwen3's
// attention (q/k norms, explicit head_dim, no bias) with a mixture-of-experts FFN (moe.ts: softmax
// router, top-k, renormalised when norm_topk_prob, no shared expert). HF configs may keep dense
// SwiGLU layers (mlp_only_layers, decoder_sparse_step); GGUF files are MoE in every layer.
// The layer loop is decoder.ts's.
import { Decoder, loadDecoder } from './decoder.js';
import { loadMoeOrDense, moeOrDense, moeShape, type MoeOrDense } from './moe.js';
import type { Architecture } from './model.js';

export const qwen3_moe: Architecture = {
  load(config, weights, backend) {
    const w = loadDecoder(config, weights, 'qk_norm', (i) => loadMoeOrDense(config, weights, i));
    const shape = moeShape(config);
    return new Decoder<MoeOrDense>(config, backend, w, (be, h, ffn, T, _il, cb, lora) => moeOrDense(be, h, ffn, T, config, shape, cb, lora));
  },
};
