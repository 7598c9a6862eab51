// The hybrid decoder Qwen3.5, Qwen3.5-MoE and Qwen3-Next share: most layers are Gated DeltaNet
// (linear attention with a recurrent state per sequence: causal conv, L2-normalised q/k, the gated
// delta rule, a gated RMSNorm); every `full_attention_interval`-th is full attention with q/k
// norms, partial NEOX RoPE and a sigmoid output gate. The FFN is the model file's: dense SwiGLU
// (qwen3_5.ts) or routed + shared experts (qwen3_5_moe.ts, qwen3_next.ts), passed in as a function.
// Spec: ../shared/design/QWEN35.md §2-§6. Norm weights follow GGUF's convention (1 + w; weights.ts
// converts HF's zero-centred ones), as does A = -exp(A_log).
import { HEAD, type Backend, type DeltaNetDims, type Weight } from '../backend/backend.js';
import { loadOutputHead, outputHead } from './blocks.js';
import type { QwenConfig } from './config.js';
import { checkBatch, commitBatch, KvCache, recurrentSpans, sequenceRows, storeKv, type BatchEntry } from './kv_cache.js';
import type { CausalLM, ForwardOutput, TraceHook } from './model.js';
import { applyEmbd, batchMpos, ropeRows } from './mrope.js';
import { ropeBase } from './rope.js';
import type { WeightLoader } from './weights.js';
import { linear, type LayerLora, type LoraSet } from '../lora/apply.js';

/** A DeltaNet layer's input projections (one tensor each in Qwen3.5; Qwen3-Next fuses them). */
export interface DeltaNetProjections {
  wqkv: Weight; // [C, D]: q (nk*dk) | k (nk*dk) | v (nv*dv) rows
  wz: Weight; // [nv*dv, D]: output gate
  wb: Weight;
  wa: Weight; // [nv, D]: beta and decay inputs
}

interface DeltaNet extends DeltaNetProjections {
  kind: 'linear';
  conv: Float32Array; // [C, K]
  dtBias: Float32Array;
  A: Float32Array; // [nv]; A = -exp(A_log) < 0
  ssmNorm: Float32Array; // [dv], shared by all heads
  wout: Weight; // [D, nv*dv]
}

export interface Attention {
  kind: 'full';
  wq: Weight;
  wgate: Weight; // [Hq*Dh, D] each (one q_proj in the file, per-head [q | gate] rows)
  wk: Weight;
  wv: Weight; // [Hkv*Dh, D]
  qNorm: Float32Array;
  kNorm: Float32Array; // [Dh]
  wo: Weight; // [D, Hq*Dh]
}

export interface Layer<F> {
  attnNorm: Float32Array; // [D]
  postNorm: Float32Array; // [D]
  mixer: DeltaNet | Attention;
  ffn: F;
}
export interface Weights<F> {
  tokenEmbd: Weight;
  layers: Layer<F>[];
  outputNorm: Float32Array;
  output: Weight | undefined;
}

/** The hybrid fields, present once config_qwen35.ts has validated the config. */
export function hybridDims(c: QwenConfig) {
  const nk = c.linear_num_key_heads!,
    nv = c.linear_num_value_heads!,
    dk = c.linear_key_head_dim!,
    dv = c.linear_value_head_dim!;
  return { nk, nv, dk, dv, C: 2 * nk * dk + nv * dv, K: c.linear_conv_kernel_dim!, nRot: Math.round(c.head_dim * c.partial_rotary_factor!) };
}

/** `layer_types[i] is ...`: the reason a layer's tensors are asked for, in shape errors. */
export const layerKind = (c: QwenConfig, i: number) => `layer_types[${i}] is ${c.layer_types![i]}`;

/** Qwen3.5's in_proj_qkv and in_proj_z (GGUF attn_qkv, attn_gate). */
export function separateQkvZ(c: QwenConfig, w: WeightLoader, la: string, kind: string): Pick<DeltaNetProjections, 'wqkv' | 'wz'> {
  const D = c.hidden_size,
    { nv, dv, C } = hybridDims(c);
  return {
    wqkv: w.matrix(`${la}.in_proj_qkv.weight`, [C, D], `${kind}: 2*linear_num_key_heads*linear_key_head_dim + linear_num_value_heads*linear_value_head_dim x hidden_size`),
    wz: w.matrix(`${la}.in_proj_z.weight`, [nv * dv, D], `${kind}: linear_num_value_heads*linear_value_head_dim x hidden_size`),
  };
}

/** Qwen3.5's DeltaNet projections: in_proj_qkv, in_proj_z, in_proj_b, in_proj_a. */
export function separateProjections(c: QwenConfig, w: WeightLoader, la: string, kind: string): DeltaNetProjections {
  const D = c.hidden_size,
    { nv } = hybridDims(c);
  return {
    ...separateQkvZ(c, w, la, kind),
    wb: w.matrix(`${la}.in_proj_b.weight`, [nv, D], `${kind}: linear_num_value_heads x hidden_size`),
    wa: w.matrix(`${la}.in_proj_a.weight`, [nv, D], `${kind}: linear_num_value_heads x hidden_size`),
  };
}

/** A gated full-attention layer's tensors (prefix `...self_attn`; also the MTP block's: mtp.ts). */
export function loadGatedAttention(c: QwenConfig, w: WeightLoader, sa: string, kind: string): Attention {
  const D = c.hidden_size,
    Hq = c.num_attention_heads,
    Dh = c.head_dim,
    kvDim = c.num_key_value_heads * Dh;
  const [wq, wgate] = w.splitRows(`${sa}.q_proj.weight`, [2 * Hq * Dh, D], [Dh, Dh], `${kind}: 2*num_attention_heads*head_dim (query and output gate) x hidden_size`) as [Weight, Weight];
  return {
    kind: 'full',
    wq,
    wgate,
    wk: w.matrix(`${sa}.k_proj.weight`, [kvDim, D], `${kind}: num_key_value_heads*head_dim x hidden_size`),
    wv: w.matrix(`${sa}.v_proj.weight`, [kvDim, D], `${kind}: num_key_value_heads*head_dim x hidden_size`),
    qNorm: w.vector(`${sa}.q_norm.weight`, Dh, 'head_dim'),
    kNorm: w.vector(`${sa}.k_norm.weight`, Dh, 'head_dim'),
    wo: w.matrix(`${sa}.o_proj.weight`, [D, Hq * Dh], `${kind}: hidden_size x num_attention_heads*head_dim`),
  };
}

/**
 * Every tensor of a hybrid model: `ffn` loads layer i's FFN (prefix `model.layers.i`), `projections`
 * a DeltaNet layer's input projections (prefix `...linear_attn`).
 */
export function loadHybrid<F>(c: QwenConfig, w: WeightLoader, ffn: (p: string, i: number) => F, projections = separateProjections): Weights<F> {
  const D = c.hidden_size,
    V = c.vocab_size;
  const { nv, dv, C, K } = hybridDims(c);
  const layers: Layer<F>[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`,
      kind = layerKind(c, i);
    const attnNorm = w.vector(`${p}.input_layernorm.weight`, D, 'hidden_size');
    const postNorm = w.vector(`${p}.post_attention_layernorm.weight`, D, 'hidden_size');
    const f = ffn(p, i);
    let mixer: DeltaNet | Attention;
    if (c.layer_types![i] === 'linear_attention') {
      const la = `${p}.linear_attn`;
      mixer = {
        kind: 'linear',
        ...projections(c, w, la, kind),
        conv: w.floats(`${la}.conv1d.weight`, [C, K], `${kind}: conv channels x linear_conv_kernel_dim`),
        dtBias: w.vector(`${la}.dt_bias`, nv, `${kind}: linear_num_value_heads`),
        A: w.vector(`${la}.A_log`, nv, `${kind}: linear_num_value_heads`),
        ssmNorm: w.vector(`${la}.norm.weight`, dv, `${kind}: linear_value_head_dim`),
        wout: w.matrix(`${la}.out_proj.weight`, [D, nv * dv], `${kind}: hidden_size x linear_num_value_heads*linear_value_head_dim`),
      };
    } else mixer = loadGatedAttention(c, w, `${p}.self_attn`, kind);
    layers.push({ attnNorm, postNorm, mixer, ffn: f });
  }
  const tokenEmbd = w.matrix('model.embed_tokens.weight', [V, D], 'vocab_size x hidden_size');
  const outputNorm = w.vector('model.norm.weight', D, 'hidden_size');
  const output = loadOutputHead(c, w, tokenEmbd);
  // The multi-token-prediction block (spec §8) only serves speculative decoding: read by --spec mtp alone (mtp.ts).
  // (A Qwen3-Next config.json does not count its MTP block: transformers skips `mtp.*` by name.)
  const hfMtp = w.naming === 'hf' && c.model_type === 'qwen3_next';
  if (c.mtp_num_hidden_layers || hfMtp) {
    const L = c.num_hidden_layers;
    w.skipMatching(w.naming === 'hf' ? /^mtp\./ : new RegExp(`^blk\\.(${Array.from({ length: c.mtp_num_hidden_layers! }, (_, j) => L + j).join('|')})\\.`));
  }
  w.skipMatching(/^model\.visual\./); // the vision tower: src/vision/attach.ts loads it
  return { tokenEmbd, layers, outputNorm, output };
}

/** A layer's FFN: h [T, D] (the post-attention norm's output) -> a new [T, D] buffer. */
export type HybridFfn<F> = (be: Backend, h: Float32Array, ffn: F, T: number, il: number, trace?: TraceHook, lora?: LayerLora) => Float32Array;

export class HybridModel<F> implements CausalLM {
  trace?: TraceHook;
  lora?: LoraSet;
  /** called in each pass with the residual stream after the last layer, x [T, D] (MTP speculation reads the target's hidden states: mtp.ts) */
  tap?: (batch: readonly BatchEntry[], caches: readonly KvCache[], x: Float32Array) => void;
  private readonly dn: DeltaNetDims;
  constructor(
    readonly config: QwenConfig,
    readonly backend: Backend,
    readonly w: Weights<F>,
    tiled: boolean,
    readonly ffn: HybridFfn<F>,
  ) {
    const { nk, nv, dk, dv } = hybridDims(config);
    this.dn = { nk, nv, dk, dv, tiled };
  }

  newCache(capacity = this.config.max_position_embeddings): KvCache {
    return new KvCache(this.backend, this.config, capacity);
  }

  /** `input`: fills the first layer's input x [T, D] in place of the token embeddings (the MTP block's fc output: mtp.ts) */
  forward(batch: readonly BatchEntry[], caches: readonly KvCache[], output: ForwardOutput = 'logits', input?: (x: Float32Array) => void): Float32Array {
    const c = this.config,
      be = this.backend,
      w = this.w,
      dn = this.dn;
    const D = c.hidden_size,
      V = c.vocab_size;
    const Hq = c.num_attention_heads,
      Hkv = c.num_key_value_heads,
      Dh = c.head_dim;
    const { nv, dv, C, K, nRot } = hybridDims(c);
    const T = batch.length,
      eps = c.rms_norm_eps;
    const cb = (name: string, il: number, t: Float32Array, shape: number[]) => this.trace?.(name, il, t, shape);
    checkBatch(batch, caches, V); // marks recurrent states dirty until commitBatch
    const positions = Int32Array.from(batch, (e) => e.pos);
    const mpos = batchMpos(batch); // image rows in the batch: M-RoPE positions [T, 3] (IMRoPE)
    const seqRows = sequenceRows(batch); // each sequence's rows, for the DeltaNet layers
    const lora = this.lora?.pass(batch); // which rows get which adapter's deltas

    be.beginPass?.(); // activations of this pass stay valid until the next pass begins
    try {
      be.place?.(HEAD); // the memory holding the embedding and output head (backends of several memories)
      let x = be.alloc(T * D); // [T, D]
      if (input) input(x);
      else
        be.embed(
          x,
          w.tokenEmbd,
          Int32Array.from(batch, (e) => e.token),
        );
      if (mpos && !input) applyEmbd(x, batch, D); // image rows bring their own
      cb('inp_embd', -1, x, [T, D]);
      for (let il = 0; il < w.layers.length; il++) {
        const L = w.layers[il]!,
          M = L.mixer;
        be.place?.(il); // this layer's memory: its activations go there, next to its weights
        const ll = lora && { pass: lora, layer: il };
        const h = be.alloc(T * D); // [T, D]
        be.rmsNorm(h, x, L.attnNorm, T, D, eps);
        cb('attn_norm', il, h, [T, D]);
        const mix = be.alloc(T * D); // [T, D]: the token mixer's output
        const temps: Float32Array[] = [];
        const tmp = (n: number) => {
          const a = be.alloc(n);
          temps.push(a);
          return a;
        };
        if (M.kind === 'linear') {
          // Gated DeltaNet
          const qkv = tmp(T * C); // [T, C]
          const z = tmp(T * nv * dv); // [T, nv*dv]
          const b = tmp(T * nv),
            a = tmp(T * nv); // [T, nv]
          be.matmulMany([qkv, z, b, a], h, [M.wqkv, M.wz, M.wb, M.wa], T);
          cb('linear_attn_qkv_mixed', il, qkv, [T, C]);
          const spans = recurrentSpans(seqRows, caches, il);
          const conv = tmp(T * C); // [T, C]: silu(causal conv), then split q | k | v
          be.ssmConv(conv, qkv, M.conv, spans, C, K);
          cb('conv_output_silu', il, conv, [T, C]);
          const o = tmp(T * nv * dv); // [T, nv*dv]
          be.deltaNet(o, conv, a, b, M.A, M.dtBias, spans, dn, eps);
          cb('attn_output', il, o, [T, nv * dv]);
          be.rmsNorm(o, o, M.ssmNorm, T * nv, dv, eps); // gated RMSNorm, per head:
          be.siluMul(o, z, o, T * nv * dv); //            rmsnorm(o) * w * silu(z)
          cb('final_output', il, o, [T, nv * dv]);
          be.matmul(mix, o, M.wout, T);
        } else {
          // gated full attention
          const q = tmp(T * Hq * Dh),
            gate = tmp(T * Hq * Dh); // [T, Hq*Dh]
          const k = tmp(T * Hkv * Dh),
            v = tmp(T * Hkv * Dh); // [T, Hkv*Dh]
          linear(be, [q, gate, k, v], h, [M.wq, M.wgate, M.wk, M.wv], T, ll, ['q_proj', 'q_proj.gate', 'k_proj', 'v_proj']);
          be.rmsNorm(q, q, M.qNorm, T * Hq, Dh, eps); // per head
          be.rmsNorm(k, k, M.kNorm, T * Hkv, Dh, eps);
          cb('Qcur_normed', il, q, [T, Hq * Dh]);
          cb('Kcur_normed', il, k, [T, Hkv * Dh]);
          // text positions are equal on M-RoPE's three axes: plain partial NEOX RoPE (spec §4);
          // with image rows, interleaved M-RoPE over (t, h, w) (VISION.md section 6)
          ropeRows(be, c, q, positions, mpos, T, Hq, Dh, ropeBase(c, nRot), nRot); // rope_theta, or YaRN's frequencies
          ropeRows(be, c, k, positions, mpos, T, Hkv, Dh, ropeBase(c, nRot), nRot);
          cb('Qcur', il, q, [T, Hq * Dh]);
          cb('Kcur', il, k, [T, Hkv * Dh]);
          const spans = storeKv(batch, caches, il, k, v, Hkv * Dh, be);
          const attn = tmp(T * Hq * Dh); // [T, Hq*Dh]
          be.attention(attn, q, spans, Hq, Hkv, Dh, 1 / Math.sqrt(Dh));
          be.sigmoidMul(attn, gate, attn, T * Hq * Dh);
          cb('attn_gated', il, attn, [T, Hq * Dh]);
          linear(be, [mix], attn, [M.wo], T, ll, ['o_proj']);
        }
        cb('attn_out', il, mix, [T, D]);
        const ffnInp = be.alloc(T * D); // [T, D]: residual
        be.add(ffnInp, x, mix, T * D);
        be.free?.(x); // the previous residual is dead
        cb('ffn_inp', il, ffnInp, [T, D]);
        be.rmsNorm(h, ffnInp, L.postNorm, T, D, eps);
        cb('attn_post_norm', il, h, [T, D]);
        const down = this.ffn(be, h, L.ffn, T, il, this.trace, ll); // [T, D]
        cb('ffn_out', il, down, [T, D]);
        x = be.alloc(T * D); // [T, D]: residual
        be.add(x, ffnInp, down, T * D);
        cb('l_out', il, x, [T, D]);
        for (const t of [h, mix, ffnInp, down, ...temps]) be.free?.(t); // reusable by the next layer
      }
      commitBatch(batch, caches);
      be.place?.(HEAD);
      this.tap?.(batch, caches, x);
      return outputHead(be, batch, x, w.outputNorm, w.output, D, V, eps, this.trace, output === 'hidden');
    } finally {
      be.endPass?.();
    }
  }
}
