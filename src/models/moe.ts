// The mixture-of-experts FFN every Qwen MoE shares (llama.cpp's build_moe_ffn with SOFTMAX gating,
// transformers' *SparseMoeBlock): written once, called from each MoE model file's forward pass.
//
//   logits = router h                          [T, E]   f32 router weight
//   probs  = softmax(logits)                   [T, E]   over all experts
//   ids    = top-k of probs                    [T, k]   ties: the lower expert index first
//   w      = probs[ids] (/ sum, normTopK)      [T, k]
//   out    = sum_j w[t,j] * down_e(silu(gate_e h) * up_e h)              (e = ids[t,j])
//          + sigmoid(shared_gate . h) * down_s(silu(gate_s h) * up_s h)  (with a shared expert)
//
// The expert products go through Backend.matmulExperts (only the chosen experts are read; rows
// batch-invariant). Softmax, top-k and the weighted sums are per-token host loops in float64
// (a few hundred values a token): no row's result depends on the rest of the batch.
import type { Backend, Weight } from '../backend/backend.js';
import type { LayerLora } from '../lora/apply.js';
import { loadSwiglu, swiglu, type FfnWeights } from './blocks.js';
import { isMoeLayer } from './config_moe.js';
import type { QwenConfig } from './config.js';
import type { WeightLoader } from './weights.js';

/** One MoE layer's tensors. Stacks are [E, rows, cols] (expert e's matrix is rows e*rows..). */
export interface MoeWeights {
  router: Weight; // [E, D], F32 (ffn_gate_inp / mlp.gate)
  gateExps: Weight;
  upExps: Weight; // [E, Fe, D] (ffn_gate_exps / ffn_up_exps)
  downExps: Weight; // [E, D, Fe] (ffn_down_exps)
  /** the shared expert (qwen2_moe, qwen3_5_moe, qwen3_next): a SwiGLU FFN [Fs] ... */
  shared?: FfnWeights;
  /** ... scaled per token by sigmoid(sharedGate . h): [1, D], F32 (ffn_gate_inp_shexp) */
  sharedGate?: Weight;
}

export interface MoeShape {
  experts: number; // E: num_experts
  topK: number; // k: num_experts_per_tok
  expertFf: number; // Fe: moe_intermediate_size
  sharedFf?: number; // Fs: shared_expert_intermediate_size (with a shared expert)
  /** renormalise the k chosen probabilities to sum 1 (norm_topk_prob) */
  normTopK: boolean;
}

/** Called with each named intermediate (llama.cpp's cb names: ffn_moe_logits, ffn_moe_probs, ...). */
export type MoeTrace = (name: string, data: Float32Array, shape: number[]) => void;

/**
 * The routed experts: softmax over the router logits, top-k, optional renormalisation.
 * Returns the chosen experts ids [T*k] and their weights [T*k].
 */
export function route(be: Backend, h: Float32Array, L: MoeWeights, T: number, s: MoeShape, cb?: MoeTrace): { ids: Int32Array; weights: Float32Array } {
  const E = s.experts,
    k = s.topK;
  const logits = be.alloc(T * E); // [T, E]
  be.matmul(logits, h, L.router, T);
  cb?.('ffn_moe_logits', logits, [T, E]);
  const probs = new Float32Array(T * E),
    ids = new Int32Array(T * k),
    weights = new Float32Array(T * k);
  const p = new Float64Array(E);
  for (let t = 0; t < T; t++) {
    let max = -Infinity,
      sum = 0;
    for (let e = 0; e < E; e++) max = Math.max(max, logits[t * E + e]!);
    for (let e = 0; e < E; e++) sum += p[e] = Math.exp(logits[t * E + e]! - max);
    for (let e = 0; e < E; e++) probs[t * E + e] = p[e]! / sum;
    // top-k by a stable selection: the largest first, the lower index on equal values (llama.cpp's
    // argsort leaves ties to std::sort; torch.topk to its kernel: rare with real-valued logits)
    const row = probs.subarray(t * E, (t + 1) * E),
      taken = new Uint8Array(E);
    let total = 0;
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let e = 0; e < E; e++) if (!taken[e] && (best < 0 || row[e]! > row[best]!)) best = e;
      taken[best] = 1;
      ids[t * k + j] = best;
      total += row[best]!;
    }
    for (let j = 0; j < k; j++) weights[t * k + j] = s.normTopK ? row[ids[t * k + j]!]! / total : row[ids[t * k + j]!]!;
  }
  be.free?.(logits);
  cb?.('ffn_moe_probs', probs, [T, E]);
  cb?.('ffn_moe_topk', Float32Array.from(ids), [T, k]);
  cb?.('ffn_moe_weights', weights, [T, k]);
  return { ids, weights };
}

/** The MoE FFN of h [T, D] -> [T, D] (a new buffer): routed experts, plus the shared expert if any. */
export function moeFfn(be: Backend, h: Float32Array, L: MoeWeights, T: number, D: number, s: MoeShape, cb?: MoeTrace): Float32Array {
  const k = s.topK,
    Fe = s.expertFf;
  const { ids, weights } = route(be, h, L, T, s, cb);
  const gate = be.alloc(T * k * Fe); // [T, k, Fe]
  const up = be.alloc(T * k * Fe); // [T, k, Fe]
  be.matmulExperts([gate, up], h, [L.gateExps, L.upExps], ids, T, k); // each token's k experts on its h
  cb?.('ffn_moe_gate', gate, [T, k, Fe]);
  cb?.('ffn_moe_up', up, [T, k, Fe]);
  be.siluMul(gate, gate, up, T * k * Fe);
  cb?.('ffn_moe_swiglu', gate, [T, k, Fe]);
  const down = be.alloc(T * k * D); // [T, k, D]
  be.matmulExperts([down], gate, [L.downExps], ids, T, k, true); // each slot's own input row
  cb?.('ffn_moe_down', down, [T, k, D]);
  be.free?.(gate);
  be.free?.(up);
  const out = be.alloc(T * D); // [T, D]: sum_j w[t,j] * down[t,j,:], slots in order
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < D; d++) {
      let acc = 0;
      for (let j = 0; j < k; j++) acc += weights[t * k + j]! * down[(t * k + j) * D + d]!;
      out[t * D + d] = acc;
    }
  }
  be.free?.(down);
  cb?.('ffn_moe_out', out, [T, D]);
  if (!L.shared) return out;
  // shared expert: sigmoid(gate . h) * swiglu(h), added
  const sh = swiglu(be, h, L.shared, T, D, s.sharedFf!); // [T, D]
  cb?.('ffn_shexp', sh, [T, D]);
  const g = be.alloc(T); // [T, 1]
  be.matmul(g, h, L.sharedGate!, T);
  cb?.('ffn_shexp_gate_inp', g, [T, 1]);
  for (let t = 0; t < T; t++) {
    const sig = 1 / (1 + Math.exp(-g[t]!));
    for (let d = 0; d < D; d++) out[t * D + d]! += sig * sh[t * D + d]!;
  }
  be.free?.(sh);
  be.free?.(g);
  return out;
}

/** The MoE shape a validated config gives (config_moe.ts / config_qwen35.ts). */
export function moeShape(c: QwenConfig): MoeShape {
  return {
    experts: c.num_experts!,
    topK: c.num_experts_per_tok!,
    expertFf: c.moe_intermediate_size!,
    sharedFf: c.shared_expert_intermediate_size || undefined,
    normTopK: c.norm_topk_prob ?? false,
  };
}

/** Layer i's MoE tensors: router, stacked experts, and the shared expert when the config has one. */
export function loadMoe(c: QwenConfig, w: WeightLoader, i: number): MoeWeights {
  const s = moeShape(c),
    D = c.hidden_size,
    p = `model.layers.${i}.mlp`;
  const { gate, up, down } = w.experts(i, s.experts, s.expertFf, D, `layer ${i}`);
  const L: MoeWeights = { router: w.f32Matrix(`${p}.gate.weight`, [s.experts, D], 'router: num_experts x hidden_size'), gateExps: gate, upExps: up, downExps: down };
  if (s.sharedFf) {
    const Fs = s.sharedFf,
      why = (t: string) => `shared expert: ${t}`;
    L.shared = {
      ffnGate: w.matrix(`${p}.shared_expert.gate_proj.weight`, [Fs, D], why('shared_expert_intermediate_size x hidden_size')),
      ffnUp: w.matrix(`${p}.shared_expert.up_proj.weight`, [Fs, D], why('shared_expert_intermediate_size x hidden_size')),
      ffnDown: w.matrix(`${p}.shared_expert.down_proj.weight`, [D, Fs], why('hidden_size x shared_expert_intermediate_size')),
    };
    L.sharedGate = w.f32Matrix(`${p}.shared_expert_gate.weight`, [1, D], why('its gate, 1 x hidden_size'));
  }
  return L;
}

/** A layer's FFN in qwen2_moe / qwen3_moe: routed experts, or a dense SwiGLU where the HF config
 * keeps one (mlp_only_layers, decoder_sparse_step). */
export type MoeOrDense = { moe: MoeWeights } | { dense: FfnWeights };

export function loadMoeOrDense(c: QwenConfig, w: WeightLoader, i: number): MoeOrDense {
  return isMoeLayer(c, i) ? { moe: loadMoe(c, w, i) } : { dense: loadSwiglu(c, w, i, ` (layer ${i} is dense)`) };
}

/** h [T, D] -> the layer's FFN output [T, D] (a new buffer). */
export function moeOrDense(be: Backend, h: Float32Array, f: MoeOrDense, T: number, c: QwenConfig, s: MoeShape, cb?: MoeTrace, lora?: LayerLora): Float32Array {
  return 'moe' in f ? moeFfn(be, h, f.moe, T, c.hidden_size, s, cb) : swiglu(be, h, f.dense, T, c.hidden_size, c.intermediate_size, lora);
}
