// Qwen3-Next (HF model_type "qwen3_next", GGUF "qwen3next": Qwen3-Next-80B-A3B): Qwen3.5-MoE's
// decoder (hybrid.ts + the MoE FFN of qwen3_5_moe.ts) with the DeltaNet input projections fused
// per key head: in_proj_qkvz rows [q (dk), k (dk), v (r*dv), z (r*dv)] and in_proj_ba rows
// [b (r), a (r)] for each of the nk key heads (r = nv / nk), value heads in transformers' grouped
// order (head g*r + m reads key head g), also in GGUF files (llama.cpp's newer converter splits
// in_proj_qkvz into attn_qkv + attn_gate, keeping that order). Plain partial NEOX RoPE (no M-RoPE).
// Spec: ../shared/design/QWEN35.md §5, §9 (the in_proj_qkvz / in_proj_ba rows).
import type { Weight } from '../backend/backend.js';
import type { QwenConfig } from './config.js';
import { HybridModel, hybridDims, loadHybrid, separateQkvZ, type DeltaNetProjections } from './hybrid.js';
import { loadMoe, moeShape } from './moe.js';
import type { Architecture } from './model.js';
import { hybridMoeFfn } from './qwen3_5_moe.js';
import type { WeightLoader } from './weights.js';

/** The fused projections regrouped into Qwen3.5's: q | k | v rows of all heads, z, b, a. */
function fusedProjections(c: QwenConfig, w: WeightLoader, la: string, kind: string): DeltaNetProjections {
  const D = c.hidden_size,
    { nk, nv, dk, dv, C } = hybridDims(c),
    r = nv / nk;
  const [wb, wa] = w.splitRows(`${la}.in_proj_ba.weight`, [2 * nv, D], [r, r], `${kind}: 2*linear_num_value_heads x hidden_size, per key head [b, a]`) as [Weight, Weight];
  if (!w.has(`${la}.in_proj_qkvz.weight`) && w.naming === 'gguf') {
    // llama.cpp's newer files: attn_qkv ([q | k | v], grouped V order) + attn_gate
    return { ...separateQkvZ(c, w, la, kind), wb, wa };
  }
  const [wqkv, wz] = w.splitRows(
    `${la}.in_proj_qkvz.weight`,
    [C + nv * dv, D],
    [dk, dk, r * dv, r * dv],
    `${kind}: 2*linear_num_key_heads*linear_key_head_dim + 2*linear_num_value_heads*linear_value_head_dim x hidden_size, per key head [q, k, v, z]`,
    [0, 0, 0, 1],
  ) as [Weight, Weight];
  return { wqkv, wz, wb, wa };
}

export const qwen3_next: Architecture = {
  load(c, w, backend) {
    const weights = loadHybrid(c, w, (_, i) => loadMoe(c, w, i), fusedProjections);
    w.finish();
    return new HybridModel(c, backend, weights, w.linearHeadsTiled, hybridMoeFfn(moeShape(c), c.hidden_size));
  },
};
