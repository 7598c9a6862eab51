// Qwen3.5 dense (HF model_type "qwen3_5" / "qwen3_5_text", GGUF "qwen35"): a hybrid decoder. Most
// layers are Gated DeltaNet (linear attention with a recurrent state per sequence: causal conv,
// L2-normalised q/k, the gated delta rule, a gated RMSNorm); every `full_attention_interval`-th is
// full attention with q/k norms, partial NEOX RoPE and a sigmoid output gate. The MLP is SwiGLU.
// Spec: ../shared/design/QWEN35.md. Norm weights follow GGUF's convention (1 + w; weights.ts
// converts HF's zero-centred ones), as does A = -exp(A_log).
import { HEAD, type Backend, type DeltaNetDims, type Weight } from '../backend/backend.js';
import { outputHead, swiglu, type FfnWeights } from './blocks.js';
import type { QwenConfig } from './config.js';
import { checkBatch, commitBatch, KvCache, recurrentSpans, sequenceRows, storeKv, type BatchEntry } from './kv_cache.js';
import type { Architecture, CausalLM, TraceHook } from './model.js';
import type { WeightLoader } from './weights.js';

interface DeltaNetLayer extends FfnWeights {
  kind: 'linear';
  attnNorm: Float32Array; // [D]
  wqkv: Weight; // [C, D]: q (nk*dk) | k (nk*dk) | v (nv*dv) rows
  wz: Weight; // [nv*dv, D]: output gate
  wb: Weight; wa: Weight; // [nv, D]: beta and decay inputs
  conv: Float32Array; // [C, K]
  dtBias: Float32Array; A: Float32Array; // [nv]; A = -exp(A_log) < 0
  ssmNorm: Float32Array; // [dv], shared by all heads
  wout: Weight; // [D, nv*dv]
  postNorm: Float32Array; // [D]
}

interface AttentionLayer extends FfnWeights {
  kind: 'full';
  attnNorm: Float32Array; // [D]
  wq: Weight; wgate: Weight; // [Hq*Dh, D] each (one q_proj in the file, per-head [q | gate] rows)
  wk: Weight; wv: Weight; // [Hkv*Dh, D]
  qNorm: Float32Array; kNorm: Float32Array; // [Dh]
  wo: Weight; // [D, Hq*Dh]
  postNorm: Float32Array; // [D]
}

type Layer = DeltaNetLayer | AttentionLayer;
interface Weights { tokenEmbd: Weight; layers: Layer[]; outputNorm: Float32Array; output: Weight }

/** The hybrid fields, present once config_qwen35.ts has validated the config. */
function dims(c: QwenConfig) {
  const nk = c.linear_num_key_heads!, nv = c.linear_num_value_heads!, dk = c.linear_key_head_dim!, dv = c.linear_value_head_dim!;
  return { nk, nv, dk, dv, C: 2 * nk * dk + nv * dv, K: c.linear_conv_kernel_dim!, nRot: Math.round(c.head_dim * c.partial_rotary_factor!) };
}

function loadWeights(c: QwenConfig, w: WeightLoader): Weights {
  const D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const { nv, dv, C, K } = dims(c);
  const Hq = c.num_attention_heads, Dh = c.head_dim, kvDim = c.num_key_value_heads * Dh;
  const layers: Layer[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`, kind = `layer_types[${i}] is ${c.layer_types![i]}`;
    const common = {
      attnNorm: w.vector(`${p}.input_layernorm.weight`, D, 'hidden_size'),
      postNorm: w.vector(`${p}.post_attention_layernorm.weight`, D, 'hidden_size'),
      ffnGate: w.matrix(`${p}.mlp.gate_proj.weight`, [F, D], 'intermediate_size x hidden_size'),
      ffnUp: w.matrix(`${p}.mlp.up_proj.weight`, [F, D], 'intermediate_size x hidden_size'),
      ffnDown: w.matrix(`${p}.mlp.down_proj.weight`, [D, F], 'hidden_size x intermediate_size'),
    };
    if (c.layer_types![i] === 'linear_attention') {
      const la = `${p}.linear_attn`;
      layers.push({
        kind: 'linear', ...common,
        wqkv: w.matrix(`${la}.in_proj_qkv.weight`, [C, D], `${kind}: 2*linear_num_key_heads*linear_key_head_dim + linear_num_value_heads*linear_value_head_dim x hidden_size`),
        wz: w.matrix(`${la}.in_proj_z.weight`, [nv * dv, D], `${kind}: linear_num_value_heads*linear_value_head_dim x hidden_size`),
        wb: w.matrix(`${la}.in_proj_b.weight`, [nv, D], `${kind}: linear_num_value_heads x hidden_size`),
        wa: w.matrix(`${la}.in_proj_a.weight`, [nv, D], `${kind}: linear_num_value_heads x hidden_size`),
        conv: w.floats(`${la}.conv1d.weight`, [C, K], `${kind}: conv channels x linear_conv_kernel_dim`),
        dtBias: w.vector(`${la}.dt_bias`, nv, `${kind}: linear_num_value_heads`),
        A: w.vector(`${la}.A_log`, nv, `${kind}: linear_num_value_heads`),
        ssmNorm: w.vector(`${la}.norm.weight`, dv, `${kind}: linear_value_head_dim`),
        wout: w.matrix(`${la}.out_proj.weight`, [D, nv * dv], `${kind}: hidden_size x linear_num_value_heads*linear_value_head_dim`),
      });
    } else {
      const sa = `${p}.self_attn`;
      const [wq, wgate] = w.splitRows(`${sa}.q_proj.weight`, [2 * Hq * Dh, D], [Dh, Dh], `${kind}: 2*num_attention_heads*head_dim (query and output gate) x hidden_size`) as [Weight, Weight];
      layers.push({
        kind: 'full', ...common, wq, wgate,
        wk: w.matrix(`${sa}.k_proj.weight`, [kvDim, D], `${kind}: num_key_value_heads*head_dim x hidden_size`),
        wv: w.matrix(`${sa}.v_proj.weight`, [kvDim, D], `${kind}: num_key_value_heads*head_dim x hidden_size`),
        qNorm: w.vector(`${sa}.q_norm.weight`, Dh, 'head_dim'),
        kNorm: w.vector(`${sa}.k_norm.weight`, Dh, 'head_dim'),
        wo: w.matrix(`${sa}.o_proj.weight`, [D, Hq * Dh], `${kind}: hidden_size x num_attention_heads*head_dim`),
      });
    }
  }
  const tokenEmbd = w.matrix('model.embed_tokens.weight', [V, D], 'vocab_size x hidden_size');
  const outputNorm = w.vector('model.norm.weight', D, 'hidden_size');
  let output = tokenEmbd;
  if (c.tie_word_embeddings) w.skip('lm_head.weight');
  else output = w.matrix('lm_head.weight', [V, D], 'vocab_size x hidden_size (tie_word_embeddings is false)');
  // The multi-token-prediction block (spec §8) only serves speculative decoding: not read yet.
  if (c.mtp_num_hidden_layers) {
    const L = c.num_hidden_layers;
    w.skipMatching(w.naming === 'hf' ? /^mtp\./ : new RegExp(`^blk\\.(${Array.from({ length: c.mtp_num_hidden_layers }, (_, j) => L + j).join('|')})\\.`));
  }
  if (w.skipMatching(/^model\.visual\./) > 0) w.notes.push('this checkpoint has a vision tower: images are not supported yet, so it is not loaded (text works)');
  return { tokenEmbd, layers, outputNorm, output };
}

class Qwen35 implements CausalLM {
  trace?: TraceHook;
  private readonly dn: DeltaNetDims;
  constructor(readonly config: QwenConfig, readonly backend: Backend, private readonly w: Weights, tiled: boolean) {
    const { nk, nv, dk, dv } = dims(config);
    this.dn = { nk, nv, dk, dv, tiled };
  }

  newCache(capacity = this.config.max_position_embeddings): KvCache {
    return new KvCache(this.backend, this.config, capacity);
  }

  forward(batch: readonly BatchEntry[], caches: readonly KvCache[]): Float32Array {
    const c = this.config, be = this.backend, w = this.w, dn = this.dn;
    const D = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
    const Hq = c.num_attention_heads, Hkv = c.num_key_value_heads, Dh = c.head_dim;
    const { nv, dv, C, K, nRot } = dims(c);
    const T = batch.length, eps = c.rms_norm_eps;
    const cb = (name: string, il: number, t: Float32Array, shape: number[]) => this.trace?.(name, il, t, shape);
    checkBatch(batch, caches, V); // marks recurrent states dirty until commitBatch
    const positions = Int32Array.from(batch, (e) => e.pos);
    const seqRows = sequenceRows(batch); // each sequence's rows, for the DeltaNet layers

    be.beginPass?.(); // activations of this pass stay valid until the next pass begins
    try {
      be.place?.(HEAD); // the memory holding the embedding and output head (backends of several memories)
      let x = be.alloc(T * D); // [T, D]
      be.embed(x, w.tokenEmbd, Int32Array.from(batch, (e) => e.token));
      cb('inp_embd', -1, x, [T, D]);
      for (let il = 0; il < w.layers.length; il++) {
        const L = w.layers[il]!;
        be.place?.(il); // this layer's memory: its activations go there, next to its weights
        const h = be.alloc(T * D); // [T, D]
        be.rmsNorm(h, x, L.attnNorm, T, D, eps);
        cb('attn_norm', il, h, [T, D]);
        const mix = be.alloc(T * D); // [T, D]: the token mixer's output
        const temps: Float32Array[] = [];
        const tmp = (n: number) => { const a = be.alloc(n); temps.push(a); return a; };
        if (L.kind === 'linear') {
          // Gated DeltaNet
          const qkv = tmp(T * C); // [T, C]
          const z = tmp(T * nv * dv); // [T, nv*dv]
          const b = tmp(T * nv), a = tmp(T * nv); // [T, nv]
          be.matmulMany([qkv, z, b, a], h, [L.wqkv, L.wz, L.wb, L.wa], T);
          cb('linear_attn_qkv_mixed', il, qkv, [T, C]);
          const spans = recurrentSpans(seqRows, caches, il);
          const conv = tmp(T * C); // [T, C]: silu(causal conv), then split q | k | v
          be.ssmConv(conv, qkv, L.conv, spans, C, K);
          cb('conv_output_silu', il, conv, [T, C]);
          const o = tmp(T * nv * dv); // [T, nv*dv]
          be.deltaNet(o, conv, a, b, L.A, L.dtBias, spans, dn, eps);
          cb('attn_output', il, o, [T, nv * dv]);
          be.rmsNorm(o, o, L.ssmNorm, T * nv, dv, eps); // gated RMSNorm, per head:
          be.siluMul(o, z, o, T * nv * dv); //            rmsnorm(o) * w * silu(z)
          cb('final_output', il, o, [T, nv * dv]);
          be.matmul(mix, o, L.wout, T);
        } else {
          // gated full attention
          const q = tmp(T * Hq * Dh), gate = tmp(T * Hq * Dh); // [T, Hq*Dh]
          const k = tmp(T * Hkv * Dh), v = tmp(T * Hkv * Dh); // [T, Hkv*Dh]
          be.matmulMany([q, gate, k, v], h, [L.wq, L.wgate, L.wk, L.wv], T);
          be.rmsNorm(q, q, L.qNorm, T * Hq, Dh, eps); // per head
          be.rmsNorm(k, k, L.kNorm, T * Hkv, Dh, eps);
          cb('Qcur_normed', il, q, [T, Hq * Dh]);
          cb('Kcur_normed', il, k, [T, Hkv * Dh]);
          // text positions are equal on M-RoPE's three axes: plain partial NEOX RoPE (spec §4)
          be.rope(q, positions, T, Hq, Dh, c.rope_theta, nRot);
          be.rope(k, positions, T, Hkv, Dh, c.rope_theta, nRot);
          cb('Qcur', il, q, [T, Hq * Dh]);
          cb('Kcur', il, k, [T, Hkv * Dh]);
          const spans = storeKv(batch, caches, il, k, v, Hkv * Dh, be);
          const attn = tmp(T * Hq * Dh); // [T, Hq*Dh]
          be.attention(attn, q, spans, Hq, Hkv, Dh, 1 / Math.sqrt(Dh));
          be.sigmoidMul(attn, gate, attn, T * Hq * Dh);
          cb('attn_gated', il, attn, [T, Hq * Dh]);
          be.matmul(mix, attn, L.wo, T);
        }
        cb('attn_out', il, mix, [T, D]);
        const ffnInp = be.alloc(T * D); // [T, D]: residual
        be.add(ffnInp, x, mix, T * D);
        be.free?.(x); // the previous residual is dead
        cb('ffn_inp', il, ffnInp, [T, D]);
        be.rmsNorm(h, ffnInp, L.postNorm, T, D, eps);
        cb('attn_post_norm', il, h, [T, D]);
        const down = swiglu(be, h, L, T, D, F); // [T, D]
        cb('ffn_out', il, down, [T, D]);
        x = be.alloc(T * D); // [T, D]: residual
        be.add(x, ffnInp, down, T * D);
        cb('l_out', il, x, [T, D]);
        for (const t of [h, mix, ffnInp, down, ...temps]) be.free?.(t); // reusable by the next layer
      }
      commitBatch(batch, caches);
      be.place?.(HEAD);
      return outputHead(be, batch, x, w.outputNorm, w.output, D, V, eps, this.trace);
    } finally {
      be.endPass?.();
    }
  }
}

export const qwen3_5: Architecture = {
  load(config, weights, backend) {
    const w = loadWeights(config, weights);
    weights.finish();
    return new Qwen35(config, backend, w, weights.linearHeadsTiled);
  },
};
