// A LoRA adapter in memory, whatever file it came from (PEFT safetensors, llama.cpp GGUF LoRA) or
// whether it was just trained: for each adapted linear layer W [N, K],
//   y = x W^T + scale * (x A^T) B^T,   A [r, K], B [N, r]   (PEFT's lora_A / lora_B, f32).
// Loaders, the forward pass, merging, export and training all speak this one shape.

/** The seven linear layers of a Qwen2 / Qwen3 decoder layer, by PEFT's (HF module) names. */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

export interface LoraModule {
  /** the HF module path, without `.weight`: `model.layers.3.self_attn.q_proj` */
  name: string;
  /** decoder layer index */
  layer: number;
  /** the module's last name part: `q_proj`, `down_proj`, ... */
  target: string;
  r: number;
  /** K: the base weight's columns (input features) */
  inFeatures: number;
  /** N: the base weight's rows (output features) */
  outFeatures: number;
  /** lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora (PEFT's `scaling`) */
  scale: number;
  /** [r, K] row-major (PEFT `lora_A.weight`) */
  a: Float32Array;
  /** [N, r] row-major (PEFT `lora_B.weight`) */
  b: Float32Array;
}

/** The PEFT adapter_config.json fields qwen.ts reads and writes (PEFT's own names). */
export interface LoraConfig {
  r: number;
  lora_alpha: number;
  use_rslora: boolean;
  /** module names (`q_proj`, ...) after expanding `all-linear` */
  target_modules: string[];
  base_model_name_or_path?: string;
}

export interface LoraAdapter {
  /** what requests and messages call it (serve's NAME, or the file's name) */
  name: string;
  config: LoraConfig;
  modules: LoraModule[];
}

/** PEFT's scaling for a module of rank r. */
export function loraScale(alpha: number, r: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}
