// Qwen3-Next (qwen3_next / GGUF qwen3next): logits against llama.cpp's on the tiny fixture (as
// qwen35moe-tiny: 8 routed experts top-3 + a shared expert, nk 2 / nv 4, but the DeltaNet's fused
// in_proj_qkvz / in_proj_ba (GGUF: attn_qkv + attn_gate, ssm_ba) and grouped V-head order in every
// file, plain NEOX partial RoPE) from the F32 and Q8_0 GGUF files and both HF layouts: one tensor
// per expert (Qwen3NextForCausalLM, as released, with its mtp.* block) and fused experts.
import { F32, hybridMoeTests, type Bounds } from './hybrid_moe_cases.js';

// Q8_0: llama.cpp rounds the activations inside its products to q8_0 blocks; we do on wasm too, at
// other points, and not at all on the reference backend. Measured on this file: max abs 0.017 (reference backend: f32 activations) and 0.013
// (wasm), relative RMS 0.018 / 0.014, argmax 102-105 of 109
// positions (one batch and token by token). Bounds 2.5x those; the greedy choice must agree where
// llama.cpp's top two are further apart than 0.1.
const Q8: Bounds = { atol: 0.05, rtol: 0, relRms: 0.04 };

hybridMoeTests('qwen3next-tiny', [['model-f32.gguf', 'f32', F32], ['.', 'f32', F32], ['fused', 'f32', F32], ['model-q8_0.gguf', 'q8_0', Q8]], 'qwen3_next');
