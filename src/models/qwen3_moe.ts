// Qwen3-MoE (HF model_type "qwen3_moe", GGUF "qwen3moe": Qwen3-30B-A3B, 235B-A22B): Qwen3's
// attention (q/k norms, explicit head_dim, no bias) with a mixture-of-experts FFN (moe.ts: softmax
// router, top-k, renormalised when norm_topk_prob, no shared expert). HF configs may keep dense
// SwiGLU layers (mlp_only_layers, decoder_sparse_step); GGUF files are MoE in every layer.
import { HEAD, type Backend, type Weight } from '../backend/backend.js';
import { outputHead, swiglu, type FfnWeights } from './blocks.js';
import type { QwenConfig } from './config.js';
import { isMoeLayer } from './config_moe.js';
import { loadMoe, moeFfn, moeShape, type MoeWeights } from './moe.js';
import { checkBatch, commitBatch, KvCache, storeKv, type BatchEntry } from './kv_cache.js';
import type { Architecture, CausalLM, TraceHook } from './model.js';
import type { WeightLoader } from './weights.js';

interface Layer {
  attnNorm: Float32Array; // [D]
  wq: Weight; // [Hq*Dh, D]
  wk: Weight; // [Hkv*Dh, D]
  wv: Weight; // [Hkv*Dh, D]
  qNorm: Float32Array; kNorm: Float32Array; // [Dh]
  wo: Weight; // [D, Hq*Dh]
  ffnNorm: Float32Array; // [D]
  moe?: MoeWeights; // routed experts, or ...
  dense?: FfnWeights; // ... a dense SwiGLU (mlp_only_layers)
}

interface Weights { tokenEmbd: Weight; layers: Layer[]; outputNorm: Float32Array; output: Weight }

function loadWeights(c: QwenConfig, w: WeightLoader): Weights {
  const D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const qDim = c.num_attention_heads * c.head_dim, kvDim = c.num_key_value_heads * c.head_dim;
  const layers: Layer[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    layers.push({
      attnNorm: w.vector(`${p}.input_layernorm.weight`, D, 'hidden_size'),
      wq: w.matrix(`${p}.self_attn.q_proj.weight`, [qDim, D], 'num_attention_heads*head_dim x hidden_size'),
      wk: w.matrix(`${p}.self_attn.k_proj.weight`, [kvDim, D], 'num_key_value_heads*head_dim x hidden_size'),
      wv: w.matrix(`${p}.self_attn.v_proj.weight`, [kvDim, D], 'num_key_value_heads*head_dim x hidden_size'),
      qNorm: w.vector(`${p}.self_attn.q_norm.weight`, c.head_dim, 'head_dim'),
      kNorm: w.vector(`${p}.self_attn.k_norm.weight`, c.head_dim, 'head_dim'),
      wo: w.matrix(`${p}.self_attn.o_proj.weight`, [D, qDim], 'hidden_size x num_attention_heads*head_dim'),
      ffnNorm: w.vector(`${p}.post_attention_layernorm.weight`, D, 'hidden_size'),
      ...(isMoeLayer(c, i) ? { moe: loadMoe(c, w, i) } : {
        dense: {
          ffnGate: w.matrix(`${p}.mlp.gate_proj.weight`, [F, D], `intermediate_size x hidden_size (layer ${i} is dense)`),
          ffnUp: w.matrix(`${p}.mlp.up_proj.weight`, [F, D], `intermediate_size x hidden_size (layer ${i} is dense)`),
          ffnDown: w.matrix(`${p}.mlp.down_proj.weight`, [D, F], `hidden_size x intermediate_size (layer ${i} is dense)`),
        },
      }),
    });
  }
  const tokenEmbd = w.matrix('model.embed_tokens.weight', [V, D], 'vocab_size x hidden_size');
  const outputNorm = w.vector('model.norm.weight', D, 'hidden_size');
  let output = tokenEmbd;
  if (c.tie_word_embeddings) w.skip('lm_head.weight');
  else output = w.matrix('lm_head.weight', [V, D], 'vocab_size x hidden_size (tie_word_embeddings is false)');
  return { tokenEmbd, layers, outputNorm, output };
}

class Qwen3Moe implements CausalLM {
  trace?: TraceHook;
  constructor(readonly config: QwenConfig, readonly backend: Backend, private readonly w: Weights) {}

  newCache(capacity = this.config.max_position_embeddings): KvCache {
    return new KvCache(this.backend, this.config, capacity);
  }

  forward(batch: readonly BatchEntry[], caches: readonly KvCache[]): Float32Array {
    const c = this.config, be = this.backend, w = this.w;
    const D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
    const Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, Dh = c.head_dim;
    const T = batch.length, eps = c.rms_norm_eps, moe = moeShape(c);
    const cb = (name: string, il: number, t: Float32Array, shape: number[]) => this.trace?.(name, il, t, shape);
    checkBatch(batch, caches, V);
    const tokens = Int32Array.from(batch, (e) => e.token);
    const positions = Int32Array.from(batch, (e) => e.pos);

    be.beginPass?.(); // activations of this pass stay valid until the next pass begins
    try {
      be.place?.(HEAD); // the memory holding the embedding and output head (backends of several memories)
      let x = be.alloc(T * D); // [T, D]
      be.embed(x, w.tokenEmbd, tokens);
      cb('inp_embd', -1, x, [T, D]);
      for (let il = 0; il < w.layers.length; il++) {
        const L = w.layers[il]!;
        be.place?.(il); // this layer's memory: its activations go there, next to its weights
        // attention block
        const h = be.alloc(T * D); // [T, D]
        be.rmsNorm(h, x, L.attnNorm, T, D, eps);
        cb('attn_norm', il, h, [T, D]);
        const q = be.alloc(T * Hq * Dh); // [T, Hq*Dh]
        const k = be.alloc(T * Hkv * Dh); // [T, Hkv*Dh]
        const v = be.alloc(T * Hkv * Dh); // [T, Hkv*Dh]
        be.matmulMany([q, k, v], h, [L.wq, L.wk, L.wv], T); // the three projections of h at once
        be.rmsNorm(q, q, L.qNorm, T * Hq, Dh, eps); // per head
        be.rmsNorm(k, k, L.kNorm, T * Hkv, Dh, eps);
        cb('Qcur_normed', il, q, [T, Hq * Dh]);
        cb('Kcur_normed', il, k, [T, Hkv * Dh]);
        be.rope(q, positions, T, Hq, Dh, c.rope_theta);
        be.rope(k, positions, T, Hkv, Dh, c.rope_theta);
        cb('Qcur', il, q, [T, Hq * Dh]);
        cb('Kcur', il, k, [T, Hkv * Dh]);
        cb('Vcur', il, v, [T, Hkv * Dh]);
        const spans = storeKv(batch, caches, il, k, v, Hkv * Dh, be);
        const attn = be.alloc(T * Hq * Dh); // [T, Hq*Dh]
        be.attention(attn, q, spans, Hq, Hkv, Dh, 1 / Math.sqrt(Dh));
        cb('kqv_out', il, attn, [T, Hq * Dh]);
        const o = be.alloc(T * D); // [T, D]
        be.matmul(o, attn, L.wo, T);
        const ffnInp = be.alloc(T * D); // [T, D]: residual
        be.add(ffnInp, x, o, T * D);
        be.free?.(x); // the previous residual is dead
        cb('ffn_inp', il, ffnInp, [T, D]);
        // MLP block
        be.rmsNorm(h, ffnInp, L.ffnNorm, T, D, eps);
        cb('ffn_norm', il, h, [T, D]);
        const down = L.moe // [T, D]
          ? moeFfn(be, h, L.moe, T, D, moe, (name, t, shape) => cb(name, il, t, shape))
          : swiglu(be, h, L.dense!, T, D, F);
        cb('ffn_out', il, down, [T, D]);
        x = be.alloc(T * D); // [T, D]: residual
        be.add(x, ffnInp, down, T * D);
        cb('l_out', il, x, [T, D]);
        // this layer's temporaries are dead: the backend may reuse them for the next layer
        for (const a of [h, q, k, v, attn, o, ffnInp, down]) be.free?.(a);
      }
      commitBatch(batch, caches);
      be.place?.(HEAD);

      return outputHead(be, batch, x, w.outputNorm, w.output, D, V, eps, this.trace);
    } finally {
      be.endPass?.();
    }
  }
}

export const qwen3_moe: Architecture = {
  load(config, weights, backend) {
    const w = loadWeights(config, weights);
    weights.finish();
    return new Qwen3Moe(config, backend, w);
  },
};
