// Small-batch products with the legacy block weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL): 2..a
// few rows of activations (a speculative verify pass), quantised in the one-token layout (q8.ts:
// Q8_SIGN in the relaxed build, Q8_I16 in the other). The one-token kernel's loop (weights read
// as stored, four rows q apart per accumulator) with the block's weights and scales loaded once
// and applied to up to four tokens; no decode pass into scratch as the tiles make, which only
// pays for itself over many tokens. Each (token, row) takes q8.ts's canonical sum, so its bits
// are those of the row alone and of the tiles (batch invariance).
import { chunkRows, claimChunk, f16x4, split } from './common';
import { DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1 } from './dequant';
import { DT_IQ4_NL } from './dequant_k';
import { act0, act1, act2, act3, aoff, isum4, offset, row_q8, signed, unsignedW } from './q8';
import { bsz, hasMin, IQ4_NL, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 } from './q8_fmt';
import { mstep, scatter4, step } from './q8_tile';

/** Rows of a claimed chunk (a multiple of 64: sixteen four-row streams). */
const UNIT = 64;

/**
 * mm_q8_0's small-batch form (mode Q8_SMALL there): out_m [T, N_m] = x [T, K] w_m^T for `count`
 * matrices (desc: per matrix out, w, N, dtype id), x quantised by quant_q8 in the one-token
 * layout. counter != 0: rows handed out in chunks through it (as mv_shared); else this part's
 * static share of every matrix.
 */
export function mm_q8_small(part: i32, parts: i32, desc: usize, count: i32, xq: usize, xd: usize, xs: usize, T: i32, K: i32, counter: usize): void {
  if (counter != 0) {
    for (;;) {
      const k = claimChunk(counter, desc, count, parts, UNIT);
      if (k < 0) return;
      const m = <i32>(k >> 32), c = <i32>k, d = desc + <usize>m * 16;
      const N = load<i32>(d, 8), ch = chunkRows(N, parts, UNIT);
      small_any(load<i32>(d, 12), <usize>load<i32>(d), <usize>load<i32>(d, 4), xq, xd, xs, T, N, K, c * ch, min(N, (c + 1) * ch));
    }
  }
  for (let m = 0; m < count; m++) {
    const d = desc + <usize>m * 16, N = load<i32>(d, 8);
    const n0 = split(N, part, parts, 8), n1 = split(N, part + 1, parts, 8);
    if (n0 < n1) small_any(load<i32>(d, 12), <usize>load<i32>(d), <usize>load<i32>(d, 4), xq, xd, xs, T, N, K, n0, n1);
  }
}

function small_any(dt: i32, out: usize, w: usize, xq: usize, xd: usize, xs: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32): void {
  switch (dt) {
    case DT_Q4_0: small_rows<Q4_0>(out, w, xq, xd, xs, T, N, K, n0, n1); break;
    case DT_Q4_1: small_rows<Q4_1>(out, w, xq, xd, xs, T, N, K, n0, n1); break;
    case DT_Q5_0: small_rows<Q5_0>(out, w, xq, xd, xs, T, N, K, n0, n1); break;
    case DT_Q5_1: small_rows<Q5_1>(out, w, xq, xd, xs, T, N, K, n0, n1); break;
    case DT_IQ4_NL: small_rows<IQ4_NL>(out, w, xq, xd, xs, T, N, K, n0, n1); break;
    default: small_rows<Q8_0>(out, w, xq, xd, xs, T, N, K, n0, n1);
  }
}

/** Rows n0..n1: four streams q rows apart (one f32x4 accumulator per token), then the rest one by
 * one; the tokens in groups of at most four. */
function small_rows<W>(out: usize, w: usize, xq: usize, xd: usize, xs: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32): void {
  const rowBytes = <usize>(K >> 5) * bsz<W>(), q = (n1 - n0) >> 2, groups = (T + 3) >> 2;
  for (let n = n0; n < n0 + q; n++) {
    for (let g = 0; g < groups; g++) {
      const t0 = (g * T) / groups, G = ((g + 1) * T) / groups - t0;
      if (G == 4) blk4<W>(4, out, w + <usize>n * rowBytes, <usize>q * rowBytes, xq, xd, xs, N, K, n, q, t0);
      else if (G == 3) blk4<W>(3, out, w + <usize>n * rowBytes, <usize>q * rowBytes, xq, xd, xs, N, K, n, q, t0);
      else if (G == 2) blk4<W>(2, out, w + <usize>n * rowBytes, <usize>q * rowBytes, xq, xd, xs, N, K, n, q, t0);
      else blk4<W>(1, out, w + <usize>n * rowBytes, <usize>q * rowBytes, xq, xd, xs, N, K, n, q, t0);
    }
  }
  for (let n = n0 + 4 * q; n < n1; n++) for (let t = 0; t < T; t++) row1<W>(out, w + <usize>n * rowBytes, xq, xd, xs, N, K, n, t);
}

/** One token's step of a block for four rows: mv_q8's block4 on a token's activation block. */
@inline function tok4<W>(c: v128, w0: usize, w1: usize, w2: usize, w3: usize, bo: usize, a: usize, K: i32, dw: v128, mw: v128, dxp: usize, sxp: usize): v128 {
  let a0 = act0(a), a1 = act1(a);
  const a2 = act2(a, K), a3 = act3(a, K);
  if (unsignedW<W>()) {
    a0 = signed(a0, a2);
    a1 = signed(a1, a3);
  }
  c = step(c, isum4<W>(w0, w1, w2, w3, bo, a0, a1, a2, a3, offset<W>(a0, a1)), dw, v128.load32_splat(dxp));
  if (hasMin<W>()) c = mstep(c, mw, v128.load32_splat(sxp));
  return c;
}

/** Four rows (w0, w0 + qb, ...: rows n, n+q, ...) times G tokens from t0 (G a constant, <= 4). */
@inline function blk4<W>(G: i32, out: usize, w0: usize, qb: usize, xq: usize, xd: usize, xs: usize, N: i32, K: i32, n: i32, q: i32, t0: i32): void {
  const nb = K >> 5, xr = <usize>K << 1, sb = <usize>nb << 2;
  const w1 = w0 + qb, w2 = w1 + qb, w3 = w2 + qb;
  const x0 = xq + <usize>t0 * xr, d0 = xd + <usize>t0 * sb, s0 = xs + <usize>t0 * sb; // s0: read by the min types only
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const bo = <usize>b * bsz<W>(), ao = aoff(b), so = <usize>b << 2;
    // the block's scales (and mins) once for the G tokens; the weights' loads are shared the same
    // way (the same loads in one straight-line block: the optimiser keeps one)
    const dw = f16x4(w0 + bo, w1 + bo, w2 + bo, w3 + bo);
    const mw = hasMin<W>() ? f16x4(w0 + bo + 2, w1 + bo + 2, w2 + bo + 2, w3 + bo + 2) : dw;
    c0 = tok4<W>(c0, w0, w1, w2, w3, bo, x0 + ao, K, dw, mw, d0 + so, s0 + so);
    if (G > 1) c1 = tok4<W>(c1, w0, w1, w2, w3, bo, x0 + xr + ao, K, dw, mw, d0 + sb + so, s0 + sb + so);
    if (G > 2) c2 = tok4<W>(c2, w0, w1, w2, w3, bo, x0 + 2 * xr + ao, K, dw, mw, d0 + 2 * sb + so, s0 + 2 * sb + so);
    if (G > 3) c3 = tok4<W>(c3, w0, w1, w2, w3, bo, x0 + 3 * xr + ao, K, dw, mw, d0 + 3 * sb + so, s0 + 3 * sb + so);
  }
  const o = out + ((<usize>t0 * N + n) << 2), on = <usize>N << 2;
  scatter4(o, q, c0, 4);
  if (G > 1) scatter4(o + on, q, c1, 4);
  if (G > 2) scatter4(o + 2 * on, q, c2, 4);
  if (G > 3) scatter4(o + 3 * on, q, c3, 4);
}

/** Row n (at w0) for token t alone: mv_q8's last rows (row_q8). */
@inline function row1<W>(out: usize, w0: usize, xq: usize, xd: usize, xs: usize, N: i32, K: i32, n: i32, t: i32): void {
  const sb = <usize>(K >> 5) << 2;
  store<f32>(out + ((<usize>t * N + n) << 2), row_q8<W>(w0, xq + <usize>t * (<usize>K << 1), xd + <usize>t * sb, xs + <usize>t * sb, K));
}
