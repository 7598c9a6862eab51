// Expert products (Backend.matmulExperts, ggml's mul_mat_id) on a backend's own dense products:
// each expert's matrix is a view into the stacked weight's bytes (a byte offset, no copy), and the
// batch's rows are grouped by expert so that each chosen expert is read once per call and the
// others not at all. Rows go through the same batch-invariant kernels as matmul, so a row's values
// do not depend on T, k or which other rows share its expert.
//
//   one token (T = 1):  shared input: one matmulMany over the k experts' views (one dispatch);
//                       per-slot input: one dispatch too where the backend has a product of
//                       one input row per matrix (rows: WasmBackend.matmulRows), else one
//                       product per slot.
//   more tokens:        rows gathered in expert order into one block, one product per expert over
//                       its rows (all experts in one dispatch where the backend has products of
//                       row segments: WasmBackend.matmulSegments), results scattered back to
//                       slot order.
import { tensorBytes } from '../formats/dtype.js';
import type { Backend, Weight } from './backend.js';

const views = new WeakMap<Weight, Weight[]>();

/** Expert e's matrix [N, K] of a stacked weight [E, N, K]: a view on its bytes (made once, so
 * backends that cache per-weight facts keep them). */
export function expertView(w: Weight, e: number): Weight {
  let vs = views.get(w);
  if (!vs) views.set(w, (vs = []));
  let v = vs[e];
  if (!v) {
    const shape = w.shape.slice(1),
      bytes = tensorBytes(w.dtype, shape); // [N, K]
    vs[e] = v = { dtype: w.dtype, shape, bytes: w.bytes.subarray(e * bytes, (e + 1) * bytes) };
  }
  return v;
}

/** Check the operands' shapes and ids (every backend's contract, so errors read the same). */
export function checkExperts(outs: Float32Array[], x: Float32Array, ws: Weight[], ids: Int32Array, T: number, k: number, perSlot: boolean): void {
  const S = T * k;
  if (ws.length === 0 || outs.length !== ws.length) throw new RangeError(`matmulExperts: ${outs.length} outputs for ${ws.length} weights`);
  const [E, , K] = ws[0]!.shape as [number, number, number];
  for (const [i, w] of ws.entries()) {
    if (w.shape.length !== 3 || w.shape[0] !== E || w.shape[2] !== K) throw new RangeError(`matmulExperts: weight ${i} has shape [${w.shape.join(', ')}], not [${E}, N, ${K}]`);
    if (outs[i]!.length < S * w.shape[1]!) throw new RangeError(`matmulExperts: output ${i} holds ${outs[i]!.length} floats, needs ${S * w.shape[1]!}`);
  }
  if (x.length < (perSlot ? S : T) * K) throw new RangeError(`matmulExperts: input holds ${x.length} floats, needs ${(perSlot ? S : T) * K}`);
  if (ids.length < S) throw new RangeError(`matmulExperts: ${ids.length} ids for ${S} slots`);
  for (let s = 0; s < S; s++) if (!(ids[s]! >= 0 && ids[s]! < E)) throw new RangeError(`matmulExperts: expert id ${ids[s]} at slot ${s} is outside 0..${E - 1}`);
}

/** A backend's products of several inputs in one call (WasmBackend.matmulRows / matmulSegments). */
export interface ExpertProducts {
  /** one token: outs[i] = x row floor(i / group) times ws[i]^T */
  rows?: (outs: Float32Array[], x: Float32Array, ws: Weight[], group: number) => void;
  /** many: outs[i] [n, N_i] = x rows seg[2i] .. seg[2i] + n times ws[i]^T, n = seg[2i+1]; x [R, K] */
  segments?: (outs: Float32Array[], x: Float32Array, ws: Weight[], seg: Int32Array, R: number) => void;
}

/** Backend.matmulExperts on `be`'s matmulMany, alloc and free; `p`'s products, where given, take
 * a decode token's per-slot products, or a batch's experts, in one call each. */
export function matmulExpertsGrouped(be: Backend, outs: Float32Array[], x: Float32Array, ws: Weight[], ids: Int32Array, T: number, k: number, perSlot = false, p: ExpertProducts = {}): void {
  const rows = p.rows;
  checkExperts(outs, x, ws, ids, T, k, perSlot);
  const K = ws[0]!.shape[2]!,
    Ns = ws.map((w) => w.shape[1]!),
    S = T * k;
  if (S === 0) return;
  const slice = (a: Float32Array, r: number, n: number, w: number) => a.subarray(r * w, (r + n) * w);
  if (T === 1) {
    // decode: the k chosen experts' rows are all that is read
    if (perSlot && !rows) {
      for (let s = 0; s < k; s++)
        be.matmulMany(
          ws.map((_, i) => slice(outs[i]!, s, 1, Ns[i]!)),
          slice(x, s, 1, K),
          ws.map((w) => expertView(w, ids[s]!)),
          1,
        );
      return;
    }
    const o: Float32Array[] = [],
      w: Weight[] = [];
    for (let s = 0; s < k; s++)
      ws.forEach((wi, i) => {
        o.push(slice(outs[i]!, s, 1, Ns[i]!));
        w.push(expertView(wi, ids[s]!));
      });
    if (perSlot)
      rows!(o, slice(x, 0, k, K), w, ws.length); // slot s's products read input row s
    else be.matmulMany(o, slice(x, 0, 1, K), w, 1);
    return;
  }
  // prefill: slots in expert order (counting sort; slot order within an expert)
  const E = ws[0]!.shape[0]!,
    start = new Int32Array(E + 1),
    order = new Int32Array(S);
  for (let s = 0; s < S; s++) start[ids[s]! + 1]!++;
  for (let e = 0; e < E; e++) start[e + 1]! += start[e]!;
  const fill = start.slice(0, E);
  for (let s = 0; s < S; s++) order[fill[ids[s]!]!++] = s;
  const xg = be.alloc(S * K); // [S, K]: input rows in expert order
  for (let r = 0; r < S; r++) xg.set(slice(x, perSlot ? order[r]! : Math.floor(order[r]! / k), 1, K), r * K);
  const og = Ns.map((N) => be.alloc(S * N)); // [S, N_i]: outputs in expert order
  try {
    if (p.segments) {
      // every chosen expert's products on its rows in one call
      const o: Float32Array[] = [],
        w: Weight[] = [],
        seg: number[] = [];
      for (let e = 0; e < E; e++) {
        const r0 = start[e]!,
          n = start[e + 1]! - r0;
        if (n > 0)
          ws.forEach((wi, i) => {
            o.push(slice(og[i]!, r0, n, Ns[i]!));
            w.push(expertView(wi, e));
            seg.push(r0, n);
          });
      }
      p.segments(o, xg, w, Int32Array.from(seg), S);
    } else {
      for (let e = 0; e < E; e++) {
        const r0 = start[e]!,
          n = start[e + 1]! - r0;
        if (n > 0)
          be.matmulMany(
            og.map((o, i) => slice(o, r0, n, Ns[i]!)),
            slice(xg, r0, n, K),
            ws.map((w) => expertView(w, e)),
            n,
          );
      }
    }
    og.forEach((o, i) => {
      const N = Ns[i]!;
      for (let r = 0; r < S; r++) outs[i]!.set(slice(o, r, 1, N), order[r]! * N);
    });
  } finally {
    be.free?.(xg);
    og.forEach((o) => be.free?.(o));
  }
}
