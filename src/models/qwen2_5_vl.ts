// Qwen2.5-VL / Qwen2-VL's language model (HF model_type "qwen2_5_vl" / "qwen2_vl", GGUF arch
// "qwen2vl"): Qwen2's decoder (qwen2.ts), whose attention turns q and k by M-RoPE positions (t, h, w)
// when image rows are in the batch (attention.ts; sections from config_vl.ts). The vision tower
// (`visual.*` in an HF folder, an mmproj GGUF beside a GGUF) is loaded on its own (src/vision/).
import { loadSwiglu, swiglu, type FfnWeights } from './blocks.js';
import { Decoder, loadDecoder } from './decoder.js';
import type { Architecture } from './model.js';

export const qwen2_5_vl: Architecture = {
  load(config, weights, backend) {
    // the tower's tensors (old checkpoints `visual.*`, newer `model.visual.*`): src/vision loads them
    weights.skipMatching(/^(model\.)?visual\./);
    const w = loadDecoder(config, weights, 'bias', (i) => loadSwiglu(config, weights, i));
    const D = config.hidden_size,
      F = config.intermediate_size;
    return new Decoder<FfnWeights>(config, backend, w, (be, h, ffn, T, _il, _cb, lora) => swiglu(be, h, ffn, T, D, F, lora));
  },
};
