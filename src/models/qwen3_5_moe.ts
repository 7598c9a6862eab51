// Qwen3.5-MoE (HF model_type "qwen3_5_moe" / "qwen3_5_moe_text", GGUF "qwen35moe": Qwen3.5-35B-A3B,
// 122B-A10B, Qwen3.6-35B-A3B): the hybrid decoder of hybrid.ts (Gated DeltaNet + gated full
// attention) with a mixture-of-experts FFN in every layer (moe.ts: softmax router, top-k, always
// renormalised, plus a shared expert scaled by sigmoid(shared_expert_gate . h)).
// Spec: ../shared/design/QWEN35.md §1, §7, §9.
import { HybridModel, loadHybrid, type HybridFfn } from './hybrid.js';
import { loadMoe, moeFfn, moeShape, type MoeShape, type MoeWeights } from './moe.js';
import type { Architecture } from './model.js';

/** The MoE FFN of a hybrid layer, with llama.cpp's trace names (ffn_moe_*, ffn_shexp). */
export function hybridMoeFfn(shape: MoeShape, D: number): HybridFfn<MoeWeights> {
  return (be, h, moe, T, il, trace) => moeFfn(be, h, moe, T, D, shape, trace && ((name, t, s) => trace(name, il, t, s)));
}

export const qwen3_5_moe: Architecture = {
  load(c, w, backend) {
    const weights = loadHybrid(c, w, (_, i) => loadMoe(c, w, i));
    w.finish();
    return new HybridModel(c, backend, weights, w.linearHeadsTiled, hybridMoeFfn(moeShape(c), c.hidden_size));
  },
};
