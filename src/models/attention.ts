// The attention half of a Qwen2 / Qwen3 decoder layer (llama.cpp's build_attn with the norm and
// projections around it): written once, called by qwen2, qwen3 and their MoE variants, which
// differ only in q/k/v biases (Qwen2) or per-head q/k RMSNorms (Qwen3).
import type { Backend, Weight } from '../backend/backend.js';
import { linear, type LayerLora } from '../lora/apply.js';
import type { QwenConfig } from './config.js';
import { storeKv, type BatchEntry, type KvCache } from './kv_cache.js';
import { ropeRows } from './mrope.js';
import { ropeBase } from './rope.js';
import type { WeightLoader } from './weights.js';

export interface AttnWeights {
  attnNorm: Float32Array; // [D]
  wq: Weight; // [Hq*Dh, D]
  wk: Weight; // [Hkv*Dh, D]
  wv: Weight; // [Hkv*Dh, D]
  bq?: Float32Array;
  bk?: Float32Array;
  bv?: Float32Array; // Qwen2: [Hq*Dh], [Hkv*Dh], [Hkv*Dh]
  qNorm?: Float32Array;
  kNorm?: Float32Array; // Qwen3: [Dh], per head
  wo: Weight; // [D, Hq*Dh]
}

/** Layer i's attention weights: Qwen2's with biases ('bias') or Qwen3's with q/k norms ('qk_norm'). */
export function loadAttention(c: QwenConfig, w: WeightLoader, i: number, kind: 'bias' | 'qk_norm'): AttnWeights {
  const D = c.hidden_size,
    qDim = c.num_attention_heads * c.head_dim,
    kvDim = c.num_key_value_heads * c.head_dim;
  const p = `model.layers.${i}.self_attn`;
  const attnNorm = w.vector(`model.layers.${i}.input_layernorm.weight`, D, 'hidden_size');
  const wq = w.matrix(`${p}.q_proj.weight`, [qDim, D], 'num_attention_heads*head_dim x hidden_size');
  if (kind === 'bias') {
    const bq = w.vector(`${p}.q_proj.bias`, qDim, 'num_attention_heads*head_dim');
    const wk = w.matrix(`${p}.k_proj.weight`, [kvDim, D], 'num_key_value_heads*head_dim x hidden_size');
    const bk = w.vector(`${p}.k_proj.bias`, kvDim, 'num_key_value_heads*head_dim');
    const wv = w.matrix(`${p}.v_proj.weight`, [kvDim, D], 'num_key_value_heads*head_dim x hidden_size');
    const bv = w.vector(`${p}.v_proj.bias`, kvDim, 'num_key_value_heads*head_dim');
    const wo = w.matrix(`${p}.o_proj.weight`, [D, qDim], 'hidden_size x num_attention_heads*head_dim');
    return { attnNorm, wq, bq, wk, bk, wv, bv, wo };
  }
  const wk = w.matrix(`${p}.k_proj.weight`, [kvDim, D], 'num_key_value_heads*head_dim x hidden_size');
  const wv = w.matrix(`${p}.v_proj.weight`, [kvDim, D], 'num_key_value_heads*head_dim x hidden_size');
  const qNorm = w.vector(`${p}.q_norm.weight`, c.head_dim, 'head_dim');
  const kNorm = w.vector(`${p}.k_norm.weight`, c.head_dim, 'head_dim');
  const wo = w.matrix(`${p}.o_proj.weight`, [D, qDim], 'hidden_size x num_attention_heads*head_dim');
  return { attnNorm, wq, wk, wv, qNorm, kNorm, wo };
}

/**
 * x [T, D] -> x + wo(attention(rope(q), rope(k), v)) as a new buffer (the layer's FFN input,
 * traced as 'ffn_inp'); x is freed. The rows' keys and values go into the caches first. `mpos`
 * [T, 3]: M-RoPE positions when the batch has image rows (mrope.ts batchMpos), else plain RoPE.
 */
export function attentionBlock(
  be: Backend,
  x: Float32Array,
  L: AttnWeights,
  batch: readonly BatchEntry[],
  caches: readonly KvCache[],
  positions: Int32Array,
  il: number,
  c: QwenConfig,
  cb: (name: string, il: number, t: Float32Array, shape: number[]) => void,
  lora?: LayerLora,
  mpos?: Int32Array,
): Float32Array {
  const D = c.hidden_size,
    Hq = c.num_attention_heads,
    Hkv = c.num_key_value_heads,
    Dh = c.head_dim;
  const T = batch.length,
    eps = c.rms_norm_eps;
  const h = be.alloc(T * D); // [T, D]
  be.rmsNorm(h, x, L.attnNorm, T, D, eps);
  cb('attn_norm', il, h, [T, D]);
  const q = be.alloc(T * Hq * Dh); // [T, Hq*Dh]
  const k = be.alloc(T * Hkv * Dh); // [T, Hkv*Dh]
  const v = be.alloc(T * Hkv * Dh); // [T, Hkv*Dh]
  linear(be, [q, k, v], h, [L.wq, L.wk, L.wv], T, lora, ['q_proj', 'k_proj', 'v_proj']); // the three projections of h at once
  if (L.bq && L.bk && L.bv) {
    be.addBias(q, L.bq, T);
    be.addBias(k, L.bk, T);
    be.addBias(v, L.bv, T);
  }
  if (L.qNorm && L.kNorm) {
    be.rmsNorm(q, q, L.qNorm, T * Hq, Dh, eps); // per head
    be.rmsNorm(k, k, L.kNorm, T * Hkv, Dh, eps);
    cb('Qcur_normed', il, q, [T, Hq * Dh]);
    cb('Kcur_normed', il, k, [T, Hkv * Dh]);
  }
  const rope = ropeBase(c); // rope_theta, or YaRN's frequencies
  ropeRows(be, c, q, positions, mpos, T, Hq, Dh, rope);
  ropeRows(be, c, k, positions, mpos, T, Hkv, Dh, rope);
  cb('Qcur', il, q, [T, Hq * Dh]);
  cb('Kcur', il, k, [T, Hkv * Dh]);
  cb('Vcur', il, v, [T, Hkv * Dh]);
  const spans = storeKv(batch, caches, il, k, v, Hkv * Dh, be);
  const attn = be.alloc(T * Hq * Dh); // [T, Hq*Dh]
  be.attention(attn, q, spans, Hq, Hkv, Dh, 1 / Math.sqrt(Dh));
  cb('kqv_out', il, attn, [T, Hq * Dh]);
  const o = be.alloc(T * D); // [T, D]
  linear(be, [o], attn, [L.wo], T, lora, ['o_proj']);
  const ffnInp = be.alloc(T * D); // [T, D]: residual
  be.add(ffnInp, x, o, T * D);
  cb('ffn_inp', il, ffnInp, [T, D]);
  for (const a of [x, h, q, k, v, attn, o]) be.free?.(a); // the previous residual and the temporaries are dead
  return ffnInp;
}
