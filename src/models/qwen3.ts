// Qwen3 (HF model_type "qwen3"): as qwen2, but no q/k/v bias, a per-head RMSNorm on q and k before
// RoPE (q_norm, k_norm), and head_dim set explicitly rather than hidden_size / heads. The layer
// loop is decoder.ts's.
import { loadSwiglu, swiglu, type FfnWeights } from './blocks.js';
import { Decoder, loadDecoder } from './decoder.js';
import type { Architecture } from './model.js';

export const qwen3: Architecture = {
  load(config, weights, backend) {
    const w = loadDecoder(config, weights, 'qk_norm', (i) => loadSwiglu(config, weights, i));
    const D = config.hidden_size,
      F = config.intermediate_size;
    return new Decoder<FfnWeights>(config, backend, w, (be, h, ffn, T, _il, _cb, lora) => swiglu(be, h, ffn, T, D, F, lora));
  },
};
