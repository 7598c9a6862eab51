// The LoRA fixtures' cases (scripts/lora-fixtures.mjs writes them; test/lora/llama.test.ts reads them).
import type { RandomAdapterOptions } from './util.js';

export const LORA_PROMPT = [1, 17, 42, 99, 7, 250, 3, 64];

export interface LoraCase {
  /** folder under test/fixtures/lora, and the logits file's stem */
  name: string;
  /** folder under test/fixtures/models */
  model: string;
  options: RandomAdapterOptions;
}

const RSLORA: RandomAdapterOptions = { r: 8, alpha: 4, rslora: true, seed: 12, ranks: { 'model.layers.0.self_attn.v_proj': 2, 'model.layers.1.mlp.up_proj': 16 } };

export const LORA_CASES: LoraCase[] = [
  { name: 'qwen2-all7', model: 'qwen2-tiny-tied', options: { r: 4, alpha: 8, seed: 11 } },
  { name: 'qwen2-rslora', model: 'qwen2-tiny-tied', options: RSLORA },
  { name: 'qwen3-all7', model: 'qwen3-tiny-tied', options: { r: 4, alpha: 8, seed: 13 } },
  { name: 'qwen3-rslora', model: 'qwen3-tiny-tied', options: RSLORA },
  // Qwen3.5: attention in its one full-attention layer (q_proj: query and gate rows), MLP in every layer
  { name: 'qwen35-all7', model: 'qwen35-tiny-tied', options: { r: 4, alpha: 8, seed: 14 } },
];
