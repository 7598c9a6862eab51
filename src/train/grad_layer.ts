// One dense Qwen2 / Qwen3 decoder layer for training: the forward with LoRA on its seven linear
// modules (keeping, when asked, what the backward reads), and the backward from the gradient of
// its output to that of its input, accumulating each module's dA and dB. Base weights are frozen:
// only input gradients flow through them (Backend.matmulT). The math is attention.ts's and
// blocks.ts's (transformers' Qwen2DecoderLayer / Qwen3DecoderLayer); shapes on each line.
import type { AttnSpan, Backend, RopeFreqs, Weight } from '../backend/backend.js';
import type { FfnWeights } from '../models/blocks.js';
import type { DecoderLayer } from '../models/decoder.js';

export type TrainLayer = DecoderLayer<FfnWeights>;

/** One module's adapter in backend storage and its gradient sums (of the loss over the batch). */
export interface HeldLora {
  r: number;
  scale: number;
  /** [r, K] */
  a: Weight;
  /** [r, N]: (scale B)^T, so that both of B's products run as wide ones (matmulT forward, matmul backward) */
  bt: Weight;
  /** dL/dA [r, K], dL/dB [N, r], accumulated */
  da: Float32Array;
  db: Float32Array;
}

/** A layer's adapted modules by target name (`q_proj`, ...). */
export type LayerLora = ReadonlyMap<string, HeldLora>;

/** The batch's shape, shared by every layer. */
export interface Rows {
  T: number;
  positions: Int32Array;
  /** -positions: rope's transpose is the rotation by minus the angle */
  back: Int32Array;
  /** rows per sequence, consecutive */
  lens: Int32Array;
  /** first row of each row's sequence */
  start: Int32Array;
}

/** Model dimensions a layer needs. */
export interface Dims {
  D: number;
  F: number;
  Hq: number;
  Hkv: number;
  Dh: number;
  eps: number;
  rope: number | RopeFreqs;
}

/** The layer's internals, recomputed from its input for the backward. */
interface Saved {
  h1: Float32Array; // [T, D] normed input
  q0?: Float32Array; // [T, Hq*Dh] before q_norm (Qwen3)
  k0?: Float32Array; // [T, Hkv*Dh]
  q: Float32Array; // [T, Hq*Dh] after rope
  k: Float32Array; // [T, Hkv*Dh] after rope
  v: Float32Array; // [T, Hkv*Dh]
  attn: Float32Array; // [T, Hq*Dh]
  ffnInp: Float32Array; // [T, D]
  h2: Float32Array; // [T, D]
  gate: Float32Array; // [T, F]
  up: Float32Array; // [T, F]
  act: Float32Array; // [T, F]
  /** x A^T [T, r] per adapted module */
  xa: Map<string, Float32Array>;
}

/** outs[i] = x ws[i]^T + (x A_i^T) (s B_i)^T for the adapted targets; keeps each x A^T in xa when given. */
function project(be: Backend, outs: Float32Array[], x: Float32Array, ws: Weight[], targets: string[], lo: LayerLora, T: number, xa?: Map<string, Float32Array>): void {
  if (outs.length === 1) be.matmul(outs[0]!, x, ws[0]!, T);
  else be.matmulMany(outs, x, ws, T);
  targets.forEach((name, i) => {
    const m = lo.get(name);
    if (!m) return;
    const t = be.alloc(T * m.r); // [T, r]
    be.matmul(t, x, m.a, T);
    be.matmulT(outs[i]!, t, m.bt, T, true); // += t (s B)^T  [T, N]
    if (xa) xa.set(name, t);
    else be.free?.(t);
  });
}

/**
 * dx [T, K] = sum_i dys[i] ws[i] (+ the adapters' paths), and each adapted module's gradients:
 * with g = dy (sB) [T, r]: dA += g^T x, dB += s (x A^T)^T dy (transposed), dx += g A.
 */
function projectBack(be: Backend, dx: Float32Array, dys: Float32Array[], ws: Weight[], targets: string[], lo: LayerLora, x: Float32Array, xa: Map<string, Float32Array>, T: number): void {
  const K = ws[0]!.shape[1]!;
  targets.forEach((name, i) => {
    const dy = dys[i]!,
      N = ws[i]!.shape[0]!;
    be.matmulT(dx, dy, ws[i]!, T, i > 0); // [T, K], the first writes
    const m = lo.get(name);
    if (!m) return;
    const g = be.alloc(T * m.r); // [T, r]
    be.matmul(g, dy, m.bt, T); // dy (s B)
    be.matmulT(dx, g, m.a, T, true); // += g A
    const ga = be.alloc(m.r * K); // [r, K]
    be.matmulTN(ga, g, x, T, m.r, K);
    for (let j = 0; j < ga.length; j++) m.da[j]! += ga[j]!;
    be.free?.(ga);
    const gb = be.alloc(m.r * N); // [r, N]: (x A^T)^T dy
    be.matmulTN(gb, xa.get(name)!, dy, T, m.r, N);
    for (let n = 0; n < N; n++) for (let j = 0; j < m.r; j++) m.db[n * m.r + j]! += m.scale * gb[j * N + n]!;
    be.free?.(gb);
    be.free?.(g);
  });
}

/** Causal spans over this batch's k and v [T, Hkv*Dh]: row t sees its sequence's rows up to itself. */
function spans(k: Float32Array, v: Float32Array, rows: Rows, kvDim: number): AttnSpan[] {
  return Array.from({ length: rows.T }, (_, t) => {
    const s = rows.start[t]!;
    return { k: k.subarray(s * kvDim), v: v.subarray(s * kvDim), len: t - s + 1 };
  });
}

/** The layer's output [T, D] for input x [T, D]; with `keep`, also what the backward reads. */
export function layerForward(be: Backend, L: TrainLayer, lo: LayerLora, x: Float32Array, rows: Rows, d: Dims, keep: boolean): { y: Float32Array; saved?: Saved } {
  const { D, F, Hq, Hkv, Dh, eps } = d,
    T = rows.T,
    qD = Hq * Dh,
    kvD = Hkv * Dh;
  const xa = keep ? new Map<string, Float32Array>() : undefined;
  const h1 = be.alloc(T * D); // [T, D]
  be.rmsNorm(h1, x, L.attnNorm, T, D, eps);
  const q0 = be.alloc(T * qD); // [T, Hq*Dh]
  const k0 = be.alloc(T * kvD); // [T, Hkv*Dh]
  const v = be.alloc(T * kvD); // [T, Hkv*Dh]
  project(be, [q0, k0, v], h1, [L.wq, L.wk, L.wv], ['q_proj', 'k_proj', 'v_proj'], lo, T, xa);
  if (L.bq && L.bk && L.bv) {
    be.addBias(q0, L.bq, T);
    be.addBias(k0, L.bk, T);
    be.addBias(v, L.bv, T);
  }
  let q = q0,
    k = k0;
  if (L.qNorm && L.kNorm) {
    q = be.alloc(T * qD); // [T, Hq*Dh]
    k = be.alloc(T * kvD); // [T, Hkv*Dh]
    be.rmsNorm(q, q0, L.qNorm, T * Hq, Dh, eps); // per head
    be.rmsNorm(k, k0, L.kNorm, T * Hkv, Dh, eps);
  }
  be.rope(q, rows.positions, T, Hq, Dh, d.rope);
  be.rope(k, rows.positions, T, Hkv, Dh, d.rope);
  const attn = be.alloc(T * qD); // [T, Hq*Dh]
  be.attention(attn, q, spans(k, v, rows, kvD), Hq, Hkv, Dh, 1 / Math.sqrt(Dh));
  const o = be.alloc(T * D); // [T, D]
  project(be, [o], attn, [L.wo], ['o_proj'], lo, T, xa);
  const ffnInp = be.alloc(T * D); // [T, D]: residual
  be.add(ffnInp, x, o, T * D);
  be.free?.(o);
  const h2 = be.alloc(T * D); // [T, D]
  be.rmsNorm(h2, ffnInp, L.ffnNorm, T, D, eps);
  const gate = be.alloc(T * F); // [T, F]
  const up = be.alloc(T * F); // [T, F]
  project(be, [gate, up], h2, [L.ffn.ffnGate, L.ffn.ffnUp], ['gate_proj', 'up_proj'], lo, T, xa);
  const act = be.alloc(T * F); // [T, F]
  be.siluMul(act, gate, up, T * F);
  const down = be.alloc(T * D); // [T, D]
  project(be, [down], act, [L.ffn.ffnDown], ['down_proj'], lo, T, xa);
  const y = be.alloc(T * D); // [T, D]: residual
  be.add(y, ffnInp, down, T * D);
  be.free?.(down);
  const saved: Saved = { h1, q, k, v, attn, ffnInp, h2, gate, up, act, xa: xa ?? new Map() };
  if (q !== q0) Object.assign(saved, { q0, k0 });
  if (keep) return { y, saved };
  freeSaved(be, saved);
  return { y };
}

function freeSaved(be: Backend, s: Saved): void {
  for (const a of [s.h1, s.q0, s.k0, s.q, s.k, s.v, s.attn, s.ffnInp, s.h2, s.gate, s.up, s.act, ...s.xa.values()]) if (a) be.free?.(a);
}

/**
 * The gradient of the layer's input [T, D] from that of its output g [T, D], recomputing the
 * forward from its input x; adds into every adapted module's da, db. Frees g.
 */
export function layerBackward(be: Backend, L: TrainLayer, lo: LayerLora, x: Float32Array, g: Float32Array, rows: Rows, d: Dims): Float32Array {
  const { D, F, Hq, Hkv, Dh, eps } = d,
    T = rows.T;
  const { y, saved } = layerForward(be, L, lo, x, rows, d, true);
  be.free?.(y);
  const s = saved!;
  // FFN: y = ffnInp + down(silu(gate(h2)) * up(h2)), h2 = rmsNorm(ffnInp)
  const dAct = be.alloc(T * F); // [T, F]
  projectBack(be, dAct, [g], [L.ffn.ffnDown], ['down_proj'], lo, s.act, s.xa, T);
  be.siluMulBack(s.gate, s.up, dAct, s.gate, s.up, T * F); // gate, up now hold their gradients
  be.free?.(dAct);
  const dh2 = be.alloc(T * D); // [T, D]
  projectBack(be, dh2, [s.gate, s.up], [L.ffn.ffnGate, L.ffn.ffnUp], ['gate_proj', 'up_proj'], lo, s.h2, s.xa, T);
  const dFfnInp = be.alloc(T * D); // [T, D]
  be.rmsNormBack(dFfnInp, dh2, s.ffnInp, L.ffnNorm, T, D, eps);
  be.add(dFfnInp, dFfnInp, g, T * D);
  be.free?.(dh2);
  be.free?.(g);
  // attention: ffnInp = x + o(attention(rope(q), rope(k), v)), q, k, v from h1 = rmsNorm(x)
  const dAttn = be.alloc(T * Hq * Dh); // [T, Hq*Dh]
  projectBack(be, dAttn, [dFfnInp], [L.wo], ['o_proj'], lo, s.attn, s.xa, T);
  const dq = be.alloc(T * Hq * Dh); // [T, Hq*Dh]
  const dk = be.alloc(T * Hkv * Dh); // [T, Hkv*Dh]
  const dv = be.alloc(T * Hkv * Dh); // [T, Hkv*Dh]
  be.attentionBack(dq, dk, dv, dAttn, s.q, s.k, s.v, s.attn, rows.lens, Hq, Hkv, Dh, 1 / Math.sqrt(Dh));
  be.free?.(dAttn);
  be.rope(dq, rows.back, T, Hq, Dh, d.rope);
  be.rope(dk, rows.back, T, Hkv, Dh, d.rope);
  if (s.q0 && s.k0 && L.qNorm && L.kNorm) {
    be.rmsNormBack(dq, dq, s.q0, L.qNorm, T * Hq, Dh, eps);
    be.rmsNormBack(dk, dk, s.k0, L.kNorm, T * Hkv, Dh, eps);
  }
  const dh1 = be.alloc(T * D); // [T, D]
  projectBack(be, dh1, [dq, dk, dv], [L.wq, L.wk, L.wv], ['q_proj', 'k_proj', 'v_proj'], lo, s.h1, s.xa, T);
  for (const a of [dq, dk, dv]) be.free?.(a);
  const dx = be.alloc(T * D); // [T, D]
  be.rmsNormBack(dx, dh1, x, L.attnNorm, T, D, eps);
  be.add(dx, dx, dFfnInp, T * D);
  be.free?.(dh1);
  be.free?.(dFfnInp);
  freeSaved(be, s);
  return dx;
}
