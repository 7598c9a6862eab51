// The multi-token-prediction (MTP, "nextn") block of Qwen3.5, Qwen3.5-MoE and Qwen3-Next: one
// extra decoder block that drafts the token after next for speculative decoding (--spec mtp,
// src/generate/spec_mtp.ts). Loaded only when asked for: plain decoding never reads its tensors.
//
// The math, as the public implementations run it (QWEN35.md §8 summarises it):
//   h_i   the target's hidden state at position i AFTER its final norm (the row its LM head reads):
//         vLLM qwen3_next.py Qwen3NextModel.forward returns `self.norm(hidden_states, residual)` and
//         that is what EagleProposer.propose passes as target_hidden_states; llama.cpp
//         src/models/qwen35.cpp (de3ff815) names the same output_norm row `h_nextn`.
//   u     = fc([RMSNorm_enorm(embed(x_{i+1})) ; RMSNorm_hnorm(h_i)])   (Linear 2D -> D, no bias; the
//         EMBEDDING half first: vLLM qwen3_next_mtp.py `torch.cat([inputs_embeds, hidden_states])`,
//         llama.cpp graph_mtp `ggml_concat(e_norm, h_norm, 0)` into nextn.eh_proj). embed is the
//         target's own table (mtp_use_dedicated_embeddings false; llama.cpp falls back to tok_embd).
//   then  one full-attention block of the target's kind (input norm, gated attention with q/k norms
//         and partial NEOX RoPE, residual, post-attention norm, dense SwiGLU for Qwen3.5 / MoE with
//         shared expert for 3.5-MoE and Next, residual) with its own KV cache;
//   g_i   = RMSNorm_{mtp.norm = nextn.shared_head_norm}(block output); logits = W_lm g_i (the target's
//         LM head: vLLM loads `lm_head` into the MTP model; llama.cpp uses model.output).
//   All these RMSNorms are Qwen3Next's zero-centred x̂·(1 + w) in HF files, stored as 1 + w in GGUF
//   (llama.cpp's converter adds 1 to every *norm.weight; formats/qwen35_values.ts does it on load).
// Positions and cache: the pair (h_i, x_{i+1}) is evaluated at position i, its keys and values kept
// in the block's own cache, so drafting x_{n} reads pairs 0..n-2 (vLLM EagleProposer: input ids
// shifted left by one, target_positions unchanged). llama.cpp's common/speculative.cpp instead puts
// the pair at position i+1 behind a zero-h entry for x_0; RoPE is relative, so only that extra entry
// differs. Chaining k > 1 drafts (vLLM method "mtp"; llama.cpp reads graph_mtp's h_nextn the same
// way): the next step feeds g_i (the normed output, not the target's h) with the drafted token at
// position i+1; those speculative entries are dropped
// afterwards. vLLM drafts by argmax, llama.cpp takes its top token (stopping below p_min); we draw
// from the request's sampler (its argmax when greedy), so the rejection sampling sees the proposal's
// distribution.
import { fail } from '../errors.js';
import type { Weight } from '../backend/backend.js';
import { loadSwiglu } from './blocks.js';
import { HybridModel, loadGatedAttention, type Layer } from './hybrid.js';
import type { BatchEntry, KvCache } from './kv_cache.js';
import { openModelFiles, type LoadOptions } from './load.js';
import type { CausalLM } from './model.js';
import { loadMoe } from './moe.js';
import { mtpRename, WeightLoader } from './weights.js';

/** A target's MTP block, ready to draft: forward() evaluates (token, hidden) pairs. */
export class MtpHead<F = unknown> {
  /** the target caches whose hidden states are being kept, by position (see track) */
  private readonly tracked = new Map<KvCache, Map<number, Float32Array>>();
  /** the normed output rows of the last forward() (its rows that asked for logits) */
  private out: Float32Array = new Float32Array(0);

  constructor(
    readonly target: HybridModel<F>,
    /** the block as a one-layer hybrid model: the target's embeddings and LM head, mtp.norm as its final norm */
    private readonly block: HybridModel<F>,
    private readonly ehProj: Weight, // [D, 2D]
    private readonly enorm: Float32Array,
    private readonly hnorm: Float32Array, // [D]
  ) {
    target.tap = (batch, caches, x) => this.capture(batch, caches, x);
    block.tap = (batch, _caches, x) => {
      this.out = this.normedRows(
        x,
        batch.flatMap((e, t) => (e.logits ? [t] : [])),
        block.w.outputNorm,
      );
    };
  }

  /** A KV cache for the block's attention, for one sequence. */
  newCache(capacity: number): KvCache {
    return this.block.newCache(capacity);
  }

  /** Keep the target's final-norm hidden state of every position `cache`'s sequence evaluates from now on (position -> [D]). */
  track(cache: KvCache): Map<number, Float32Array> {
    let m = this.tracked.get(cache);
    if (!m) this.tracked.set(cache, (m = new Map()));
    return m;
  }

  untrack(cache: KvCache): void {
    this.tracked.delete(cache);
  }

  /**
   * Evaluate the pairs (batch[t].token, hidden row t) at batch[t].pos of caches[batch[t].seq]:
   * returns logits [R, V] (valid until the backend's next pass) and the normed output rows [R, D]
   * (chained drafts feed them back) of the R entries that ask for logits.
   */
  forward(batch: readonly BatchEntry[], hidden: Float32Array, caches: readonly KvCache[]): { logits: Float32Array; hidden: Float32Array } {
    const c = this.target.config,
      be = this.target.backend,
      D = c.hidden_size,
      T = batch.length,
      eps = c.rms_norm_eps;
    if (hidden.length !== T * D) fail(`MTP: ${hidden.length / D} hidden rows for ${T} tokens`);
    const input = (x: Float32Array) => {
      // x = fc([enorm(embed(token)) ; hnorm(h)])
      const e = be.alloc(T * D),
        h = be.alloc(T * D),
        cat = be.alloc(T * 2 * D);
      be.embed(
        e,
        this.target.w.tokenEmbd,
        Int32Array.from(batch, (b) => b.token),
      );
      be.rmsNorm(e, e, this.enorm, T, D, eps);
      h.set(hidden);
      be.rmsNorm(h, h, this.hnorm, T, D, eps);
      for (let t = 0; t < T; t++) {
        be.copy(cat, 2 * t * D, e, t * D, D);
        be.copy(cat, (2 * t + 1) * D, h, t * D, D);
      }
      be.matmul(x, cat, this.ehProj, T);
      for (const a of [e, h, cat]) be.free?.(a);
    };
    const logits = this.block.forward(batch, caches, 'logits', input);
    return { logits, hidden: this.out };
  }

  /** The target's tap: the final-norm rows of the tracked sequences, kept by position. */
  private capture(batch: readonly BatchEntry[], caches: readonly KvCache[], x: Float32Array): void {
    if (!this.tracked.size) return;
    const rows = batch.flatMap((e, t) => (this.tracked.has(caches[e.seq]!) ? [t] : []));
    if (!rows.length) return;
    const D = this.target.config.hidden_size;
    const normed = this.normedRows(x, rows, this.target.w.outputNorm);
    rows.forEach((t, r) => {
      const e = batch[t]!;
      this.tracked.get(caches[e.seq]!)!.set(e.pos, normed.slice(r * D, (r + 1) * D));
    });
  }

  /** RMSNorm(x[rows]) * norm, copied out of the backend's memory: [R, D]. */
  private normedRows(x: Float32Array, rows: readonly number[], norm: Float32Array): Float32Array {
    const be = this.target.backend,
      D = this.target.config.hidden_size,
      R = rows.length;
    if (!R) return new Float32Array(0);
    const sel = be.alloc(R * D);
    rows.forEach((t, r) => be.copy(sel, r * D, x, t * D, D));
    be.rmsNorm(sel, sel, norm, R, D, this.target.config.rms_norm_eps);
    const out = sel.slice();
    be.free?.(sel);
    return out;
  }
}

/** one head per loaded target: --spec mtp opened twice on a model shares it */
const heads = new WeakMap<CausalLM, MtpHead>();

/**
 * The MTP block of the model at `path`, already loaded as `target`: its tensors are read from the
 * files again, alone (HF `mtp.*`, GGUF `blk.L.*` with L = num_hidden_layers), through the target's
 * backend; the embeddings and LM head are the target's.
 */
export function loadMtp(path: string, target: CausalLM, opts: Pick<LoadOptions, 'quantize' | 'checkTensors'> = {}): MtpHead {
  const known = heads.get(target);
  if (known) return known;
  const refuse = (why: string): never => fail(`--spec mtp: ${path} ${why}; use --spec ngram or --draft MODEL`);
  const none = 'has no MTP heads (multi-token-prediction layers: some Qwen3.5 and Qwen3-Next checkpoints carry them)';
  if (!(target instanceof HybridModel)) return refuse(none);
  const { format, source } = openModelFiles(path);
  try {
    const c = target.config,
      L = c.num_hidden_layers,
      D = c.hidden_size;
    const w = new WeightLoader(source, format, target.backend, undefined, c.model_type, opts.quantize, opts.checkTensors);
    // HF configs may not count the block (Qwen3-Next's does not: llama.cpp's converter counts mtp.layers.*)
    const n = format === 'hf' ? [0, 1, 2].filter((j) => w.has(`mtp.layers.${j}.input_layernorm.weight`)).length : (c.mtp_num_hidden_layers ?? 0);
    if (n === 0) return refuse(none);
    if (n > 1) return refuse(`has ${n} MTP blocks; qwen.ts runs one (as llama.cpp's qwen35 graph does)`);
    w.skipMatching(format === 'hf' ? /^(?!mtp\.)/ : new RegExp(`^(?!blk\\.${L}\\.)`));
    w.rename = mtpRename(format, L);
    const p = `model.layers.${L}`,
      kind = 'the MTP block';
    // the FFN of the target's other layers: the loader matching its forward's ffn (qwen3_5.ts dense, else moe.ts)
    const ffn: unknown = c.model_type === 'qwen3_5_text' ? loadSwiglu(c, w, L, ` (${kind})`) : loadMoe(c, w, L);
    const layer: Layer<unknown> = {
      attnNorm: w.vector(`${p}.input_layernorm.weight`, D, `hidden_size (${kind})`),
      postNorm: w.vector(`${p}.post_attention_layernorm.weight`, D, `hidden_size (${kind})`),
      mixer: loadGatedAttention(c, w, `${p}.self_attn`, kind),
      ffn,
    };
    const ehProj = w.matrix('mtp.fc.weight', [D, 2 * D], `${kind}: hidden_size x 2*hidden_size`);
    const enorm = w.vector('mtp.pre_fc_norm_embedding.weight', D, `hidden_size (${kind})`);
    const hnorm = w.vector('mtp.pre_fc_norm_hidden.weight', D, `hidden_size (${kind})`);
    const headNorm = w.vector('mtp.norm.weight', D, `hidden_size (${kind})`);
    w.finish();
    const cfg = { ...c, num_hidden_layers: 1, layer_types: ['full_attention' as const] };
    const block = new HybridModel(cfg, target.backend, { tokenEmbd: target.w.tokenEmbd, layers: [layer], outputNorm: headNorm, output: target.w.output }, false, target.ffn);
    const head = new MtpHead(target, block, ehProj, enorm, hnorm);
    heads.set(target, head);
    return head;
  } finally {
    source.close();
  }
}
