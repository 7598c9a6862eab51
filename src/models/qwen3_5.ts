// Qwen3.5 dense (HF model_type "qwen3_5" / "qwen3_5_text", GGUF "qwen35"): the hybrid decoder of
// hybrid.ts (Gated DeltaNet + gated full attention) with a SwiGLU MLP in every layer.
// Spec: ../shared/design/QWEN35.md.
import { swiglu, type FfnWeights } from './blocks.js';
import { HybridModel, loadHybrid } from './hybrid.js';
import type { Architecture } from './model.js';

export const qwen3_5: Architecture = {
  load(c, w, backend) {
    const D = c.hidden_size,
      F = c.intermediate_size;
    const weights = loadHybrid(
      c,
      w,
      (p): FfnWeights => ({
        ffnGate: w.matrix(`${p}.mlp.gate_proj.weight`, [F, D], 'intermediate_size x hidden_size'),
        ffnUp: w.matrix(`${p}.mlp.up_proj.weight`, [F, D], 'intermediate_size x hidden_size'),
        ffnDown: w.matrix(`${p}.mlp.down_proj.weight`, [D, F], 'hidden_size x intermediate_size'),
      }),
    );
    w.finish();
    // SwiGLU: down(silu(gate h) * up h)
    return new HybridModel(c, backend, weights, w.linearHeadsTiled, (be, h, f, T, _il, _trace, lora) => swiglu(be, h, f, T, D, F, lora));
  },
};
