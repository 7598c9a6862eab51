// The expert fields of Qwen2-MoE / Qwen3-MoE configs (HF model_type qwen2_moe / qwen3_moe, GGUF
// arch qwen2moe / qwen3moe), validated like config.ts does the rest: HF names, one-line errors
// naming the field or metadata key. Semantics (transformers' Qwen2MoeDecoderLayer / TopKRouter,
// llama.cpp's src/models/qwen{2,3}moe.cpp):
//   - a layer is MoE unless listed in mlp_only_layers or (i + 1) % decoder_sparse_step != 0; the
//     others have a dense SwiGLU FFN of intermediate_size (GGUF: every layer is MoE);
//   - qwen2_moe adds a shared expert of shared_expert_intermediate_size, scaled by a sigmoid gate;
//   - norm_topk_prob: HF follows the field (default false); llama.cpp's qwen3moe always
//     renormalises and its qwen2moe never does, so a GGUF file gets true / false by arch.
import { fail, quote } from '../errors.js';
import type { GgufValue } from '../formats/gguf.js';
import type { QwenConfig } from './config.js';
import { at, posInt, type Obj } from './config_fields.js';

/** The MoE fields of a qwen2_moe / qwen3_moe config.json, checked against the rest of it (`base`). */
export function moeFromHf(o: Obj, src: string, base: QwenConfig): Partial<QwenConfig> {
  const mt = base.model_type,
    L = base.num_hidden_layers;
  const E = posInt(src, o, 'num_experts');
  const k = posInt(src, o, 'num_experts_per_tok');
  if (k > E) fail(`${at(src, 'num_experts_per_tok')} = ${k} is more than num_experts = ${E}`);
  const norm = o.norm_topk_prob ?? false;
  if (typeof norm !== 'boolean') fail(`${at(src, 'norm_topk_prob')} must be true or false, got ${JSON.stringify(norm)}`);
  const step = posInt(src, o, 'decoder_sparse_step', 1);
  const only = o.mlp_only_layers ?? [];
  if (!Array.isArray(only) || only.some((i) => !Number.isSafeInteger(i) || i < 0 || i >= L)) {
    fail(`${at(src, 'mlp_only_layers')} must list layer indices 0..${L - 1}, got ${JSON.stringify(o.mlp_only_layers)}`);
  }
  const c: Partial<QwenConfig> = {
    num_experts: E,
    num_experts_per_tok: k,
    moe_intermediate_size: posInt(src, o, 'moe_intermediate_size'),
    norm_topk_prob: norm,
    decoder_sparse_step: step,
    mlp_only_layers: [...(only as number[])],
  };
  if (mt === 'qwen2_moe') c.shared_expert_intermediate_size = posInt(src, o, 'shared_expert_intermediate_size');
  else if (o.shared_expert_intermediate_size != null && o.shared_expert_intermediate_size !== 0) {
    fail(`${at(src, 'shared_expert_intermediate_size')}: ${mt} has no shared expert (that is qwen2_moe)`);
  }
  const dense = Array.from({ length: L }, (_, i) => i).filter((i) => !isMoeLayer({ ...base, ...c }, i));
  if (dense.length && !(base.intermediate_size > 0)) fail(`${at(src, 'intermediate_size')} is missing, but layers ${dense.join(', ')} are dense (mlp_only_layers / decoder_sparse_step)`);
  return c;
}

/** Whether layer i has routed experts (transformers' Qwen2MoeDecoderLayer rule). */
export function isMoeLayer(c: QwenConfig, i: number): boolean {
  return !(c.mlp_only_layers ?? []).includes(i) && (c.num_experts ?? 0) > 0 && (i + 1) % (c.decoder_sparse_step ?? 1) === 0;
}

/** The MoE fields of a qwen2moe / qwen3moe GGUF file (llama.cpp's keys). */
export function moeFromGguf(meta: Map<string, GgufValue>, src: string, arch: 'qwen2moe' | 'qwen3moe', ff: number | undefined): Partial<QwenConfig> {
  const key = (k: string) => `${arch}.${k}`;
  const num = (k: string, dflt?: number): number => {
    let v = meta.get(key(k)) ?? dflt;
    // llama.cpp reads expert_feed_forward_length as a number or a per-layer array (get_key_or_arr)
    if (Array.isArray(v)) {
      const a = v as unknown[];
      if (a.length > 0 && a.every((x) => x === a[0])) v = a[0] as number;
    }
    if (v === undefined) fail(`${src}: metadata ${quote(key(k))} is missing`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0)
      fail(`${src}: metadata ${quote(key(k))} must be a positive integer${Array.isArray(v) ? ' (the same for every layer)' : ''}, got ${quote(v)}`);
    return v;
  };
  const E = num('expert_count'),
    k = num('expert_used_count');
  if (k > E) fail(`${src}: metadata ${quote(key('expert_used_count'))} = ${k} is more than expert_count = ${E}`);
  // without the key llama.cpp takes feed_forward_length / expert_used_count
  const dflt = ff !== undefined && ff % k === 0 ? ff / k : undefined;
  const c: Partial<QwenConfig> = {
    num_experts: E,
    num_experts_per_tok: k,
    moe_intermediate_size: num('expert_feed_forward_length', dflt),
    norm_topk_prob: arch === 'qwen3moe',
    decoder_sparse_step: 1,
    mlp_only_layers: [],
  };
  if (arch === 'qwen2moe') c.shared_expert_intermediate_size = num('expert_shared_feed_forward_length', ff);
  return c;
}
