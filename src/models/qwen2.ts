// Qwen2 / Qwen2.5 (HF model_type "qwen2"): pre-norm decoder, RMSNorm, NEOX RoPE, grouped-query
// attention with q/k/v bias, SwiGLU MLP, tied or untied output head. The layer loop is decoder.ts's.
import { loadSwiglu, swiglu, type FfnWeights } from './blocks.js';
import { Decoder, loadDecoder } from './decoder.js';
import type { Architecture } from './model.js';

export const qwen2: Architecture = {
  load(config, weights, backend) {
    const w = loadDecoder(config, weights, 'bias', (i) => loadSwiglu(config, weights, i));
    const D = config.hidden_size,
      F = config.intermediate_size;
    return new Decoder<FfnWeights>(config, backend, w, (be, h, ffn, T, _il, _cb, lora) => swiglu(be, h, ffn, T, D, F, lora));
  },
};
