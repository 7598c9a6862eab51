// Qwen3.5-MoE (qwen3_5_moe / GGUF qwen35moe): logits against llama.cpp's on the tiny fixture
// (hybrid DeltaNet + gated attention layers, 8 routed experts top-3 + a shared expert; nk 2 / nv 4
// so the GGUF's tiled V-head order matters) from the F32 and Q8_0 GGUF files and both HF layouts:
// fused experts in Qwen3_5MoeForConditionalGeneration's layout (model.language_model.*, as the
// released checkpoints) and one tensor per expert (Qwen3_5MoeForCausalLM).
import { F32, hybridMoeTests, type Bounds } from './hybrid_moe_cases.js';

// Q8_0: llama.cpp rounds the activations inside its products to q8_0 blocks; we do on wasm too, at
// other points, and not at all on the reference backend. Measured on this file: max abs 0.020 (reference backend: f32 activations, as the
// fixture's float64 check) and 0.012 (wasm), relative RMS 0.019 / 0.014, argmax 105-108 of 109
// positions (one batch and token by token). Bounds 2.5x those; the greedy choice must agree where
// llama.cpp's top two are further apart than 0.1.
const Q8: Bounds = { atol: 0.05, rtol: 0, relRms: 0.04 };

hybridMoeTests('qwen35moe-tiny', [['model-f32.gguf', 'f32', F32], ['.', 'f32', F32], ['per-expert', 'f32', F32], ['model-q8_0.gguf', 'q8_0', Q8]], 'qwen3_5_moe_text');
