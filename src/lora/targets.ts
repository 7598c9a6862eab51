// Which linear modules an architecture has for LoRA to adapt, by PEFT's (HF) module names, and
// their shapes [N, K] (out, in features) from the config: what an adapter is checked against.
import { fail, quote } from '../errors.js';
import type { QwenConfig } from '../models/config.js';
import type { LoraAdapter } from './adapter.js';

export interface TargetShape {
  /** the module path inside a layer: `self_attn.q_proj` */
  path: string;
  n: number;
  k: number;
}

// the module paths of a dense decoder layer, by target name
const PATHS: Record<string, string> = {
  q_proj: 'self_attn.q_proj',
  k_proj: 'self_attn.k_proj',
  v_proj: 'self_attn.v_proj',
  o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj',
  up_proj: 'mlp.up_proj',
  down_proj: 'mlp.down_proj',
};

/** The architectures whose forward pass applies LoRA adapters. */
export const LORA_MODEL_TYPES: readonly string[] = ['qwen2', 'qwen3', 'qwen2_moe', 'qwen3_moe', 'qwen3_5_text'];

/** Whether layer i of a MoE model has a dense FFN (config_moe.ts's rule). */
function denseFfn(c: QwenConfig, i: number): boolean {
  if (c.num_experts === undefined) return true;
  const step = c.decoder_sparse_step ?? 1;
  return (c.mlp_only_layers ?? []).includes(i) || !((i + 1) % step === 0);
}

/** Target `target`'s module in layer `layer` of a model with config c, or undefined where it has none. */
export function targetShape(c: QwenConfig, layer: number, target: string): TargetShape | undefined {
  if (!LORA_MODEL_TYPES.includes(c.model_type)) return undefined;
  if (layer < 0 || layer >= c.num_hidden_layers || !Object.hasOwn(PATHS, target)) return undefined;
  const D = c.hidden_size,
    F = c.intermediate_size,
    q = c.num_attention_heads * c.head_dim,
    kv = c.num_key_value_heads * c.head_dim;
  const path = PATHS[target]!;
  if (path.startsWith('mlp.') && !denseFfn(c, layer)) return undefined;
  // Qwen3.5: self_attn only in its full-attention layers, where q_proj holds each head's query and output-gate rows
  const gated = c.model_type === 'qwen3_5_text';
  if (gated && path.startsWith('self_attn.') && c.layer_types?.[layer] !== 'full_attention') return undefined;
  const nk: Record<string, [number, number]> = { q_proj: [gated ? 2 * q : q, D], k_proj: [kv, D], v_proj: [kv, D], o_proj: [D, q], gate_proj: [F, D], up_proj: [F, D], down_proj: [D, F] };
  const [n, k] = nk[target]!;
  return { path, n, k };
}

/**
 * Check an adapter against a model's config: every module must be one the architecture has, at the
 * path PEFT names it by, with A [r, K] and B [N, r] fitting the base weight [N, K]. Errors name the
 * adapter, the module and both shapes.
 */
export function checkAdapter(c: QwenConfig, a: LoraAdapter): void {
  for (const m of a.modules) {
    const s = targetShape(c, m.layer, m.target);
    const where = `LoRA adapter ${quote(a.name)}: module ${quote(m.name)}`;
    if (!s) {
      if (!LORA_MODEL_TYPES.includes(c.model_type)) fail(`${where}: LoRA adapters apply to ${LORA_MODEL_TYPES.join(', ')} models, and this model is ${c.model_type}`);
      if (m.layer >= c.num_hidden_layers) fail(`${where} is in layer ${m.layer}, but the model has ${c.num_hidden_layers} layers`);
      fail(
        `${where}: ${c.model_type} models have no ${quote(m.target)} module${Object.hasOwn(PATHS, m.target) ? ' in this layer' : ''} to adapt (LoRA applies to ${Object.keys(PATHS).join(', ')} of dense layers; in Qwen3.5, self_attn is in the full-attention layers only)`,
      );
    }
    if (m.name !== `model.layers.${m.layer}.${s.path}`) fail(`${where}: ${c.model_type} models name this module model.layers.${m.layer}.${s.path}`);
    if (m.r < 1) fail(`${where} has rank ${m.r}; the rank must be at least 1`);
    if (m.inFeatures !== s.k || m.outFeatures !== s.n) {
      fail(
        `${where} is [${m.outFeatures}, ${m.inFeatures}] (B [${m.outFeatures}, ${m.r}] x A [${m.r}, ${m.inFeatures}]), but the model's weight is [${s.n}, ${s.k}]; the adapter was made for another model`,
      );
    }
    if (m.a.length !== m.r * m.inFeatures || m.b.length !== m.outFeatures * m.r) fail(`${where}: A or B holds the wrong number of values for rank ${m.r}`);
  }
}
