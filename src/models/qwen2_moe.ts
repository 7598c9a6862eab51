// Qwen2-MoE (HF model_type "qwen2_moe", GGUF "qwen2moe": Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): Qwen2's
// attention (q/k/v bias) with a mixture-of-experts FFN (moe.ts): softmax router, top-k, not
// renormalised unless norm_topk_prob, plus a shared expert scaled by sigmoid(shared_expert_gate h).
// HF configs may keep dense SwiGLU layers (mlp_only_layers, decoder_sparse_step); GGUF files are
// MoE in every layer.
// The layer loop is decoder.ts's.
import { Decoder, loadDecoder } from './decoder.js';
import { loadMoeOrDense, moeOrDense, moeShape, type MoeOrDense } from './moe.js';
import type { Architecture } from './model.js';

export const qwen2_moe: Architecture = {
  load(config, weights, backend) {
    const w = loadDecoder(config, weights, 'bias', (i) => loadMoeOrDense(config, weights, i));
    const shape = moeShape(config);
    return new Decoder<MoeOrDense>(config, backend, w, (be, h, ffn, T, _il, cb, lora) => moeOrDense(be, h, ffn, T, config, shape, cb, lora));
  },
};
