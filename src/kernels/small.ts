// Small-batch products with BF16 / F16 weights: a few rows of activations (a speculative
// verify pass, a few sequences' decode steps). Each weight vector is loaded and converted once
// and applied to a group of up to GB tokens in registers, so the weights stream from memory
// once (a group after the first finds its rows in cache) instead of being decoded to f32 scratch
// as mm_rows does. Each (token, row) takes mv16's sum exactly (lanes over K & ~7 as lo then hi
// half, row_end16): a row's bits are those of the same row alone (batch invariance).
import { madd, split } from './common';
import { hi16, lo16, row_end16 } from './float';

/**
 * out_m [T, N_m] = x [T, K] w_m^T for `count` matrices of 16-bit floats, T >= 2 (mv_f16 and
 * mv_bf16 with T > 1; desc and xs as there). H = i16: F16 rows, u16: BF16 rows.
 */
export function small16<H>(part: i32, parts: i32, desc: usize, count: i32, xs: usize, T: i32, K: i32): void {
  for (let m = 0; m < count; m++) {
    const d = desc + <usize>m * 12;
    const out = <usize>load<i32>(d), w = <usize>load<i32>(d, 4), N = load<i32>(d, 8);
    const n0 = split(N, part, parts, 4), n1 = split(N, part + 1, parts, 4);
    if (n0 < n1) rows16<H>(out, w, xs, T, N, K, n0, n1);
  }
}

// rows per block (streams q rows apart, as mv16's eight) and most tokens per group: RB * GB
// accumulators. bench/smallbatch.ts (BF16, 0.5B q/o and gate/up, 1 thread, CPU time, busy
// machine): 4 x 2 and 4 x 3 within noise of each other, 3 x 2 and 2 x 3 10-25% slower, 3 x 3 and
// 3 x 2 with the lo and hi steps apart no better. V8 (11.3) loads each step's operands up front
// and spills some accumulators past 8 (x64 has 16 vector registers)
const RB = 4, GB = 2;

/** Rows n0..n1: RB streams q rows apart, then the rest one by one; per row block, the tokens in
 * groups of at most GB (a group after the first finds the rows in cache). */
function rows16<H>(out: usize, w: usize, xs: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32): void {
  const q = (n1 - n0) / RB, groups = (T + GB - 1) / GB;
  let n = n0;
  for (; n < n0 + q; n++) {
    for (let g = 0; g < groups; g++) {
      const t0 = (g * T) / groups, G = ((g + 1) * T) / groups - t0;
      if (G == 3) blk16<H>(RB, 3, out, w, xs, N, K, n, q, t0);
      else if (G == 2) blk16<H>(RB, 2, out, w, xs, N, K, n, q, t0);
      else blk16<H>(RB, 1, out, w, xs, N, K, n, q, t0);
    }
  }
  n += (RB - 1) * q;
  for (; n < n1; n++) {
    for (let g = 0; g < groups; g++) {
      const t0 = (g * T) / groups, G = ((g + 1) * T) / groups - t0;
      if (G == 3) blk16<H>(1, 3, out, w, xs, N, K, n, 0, t0);
      else if (G == 2) blk16<H>(1, 2, out, w, xs, N, K, n, 0, t0);
      else blk16<H>(1, 1, out, w, xs, N, K, n, 0, t0);
    }
  }
}

/** One accumulator's step of eight columns: mv16_rows's order (lo half, then hi half). */
@inline function acc8(a: v128, lo: v128, hi: v128, x: usize): v128 {
  return madd(hi, v128.load(x, 16), madd(lo, v128.load(x), a));
}

/**
 * R rows (n, n+q, ..., R <= 4) times G tokens (t0.., G <= 3); R and G are constants at every call
 * (inlined: the unused accumulators fold away).
 */
@inline function blk16<H>(R: i32, G: i32, out: usize, w: usize, xs: usize, N: i32, K: i32, n: i32, q: i32, t0: i32): void {
  const rb = <usize>K << 1, xr = <usize>K << 2, K8 = K & ~7;
  const w0 = w + <usize>n * rb, w1 = w0 + <usize>q * rb, w2 = w1 + <usize>q * rb, w3 = w2 + <usize>q * rb;
  const x0 = xs + <usize>t0 * xr, x1 = x0 + xr, x2 = x1 + xr;
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0);
  let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0);
  let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a22 = f32x4.splat(0);
  let a30 = f32x4.splat(0), a31 = f32x4.splat(0), a32 = f32x4.splat(0);
  for (let k = 0; k < K8; k += 8) {
    const xo = <usize>k << 2, ko = <usize>k << 1;
    const h0 = v128.load(w0 + ko), l0 = lo16<H>(h0), u0 = hi16<H>(h0);
    a00 = acc8(a00, l0, u0, x0 + xo);
    if (G > 1) a01 = acc8(a01, l0, u0, x1 + xo);
    if (G > 2) a02 = acc8(a02, l0, u0, x2 + xo);
    if (R > 1) {
      const h1 = v128.load(w1 + ko), l1 = lo16<H>(h1), u1 = hi16<H>(h1);
      a10 = acc8(a10, l1, u1, x0 + xo);
      if (G > 1) a11 = acc8(a11, l1, u1, x1 + xo);
      if (G > 2) a12 = acc8(a12, l1, u1, x2 + xo);
    }
    if (R > 2) {
      const h2 = v128.load(w2 + ko), l2 = lo16<H>(h2), u2 = hi16<H>(h2);
      a20 = acc8(a20, l2, u2, x0 + xo);
      if (G > 1) a21 = acc8(a21, l2, u2, x1 + xo);
      if (G > 2) a22 = acc8(a22, l2, u2, x2 + xo);
    }
    if (R > 3) {
      const h3 = v128.load(w3 + ko), l3 = lo16<H>(h3), u3 = hi16<H>(h3);
      a30 = acc8(a30, l3, u3, x0 + xo);
      if (G > 1) a31 = acc8(a31, l3, u3, x1 + xo);
      if (G > 2) a32 = acc8(a32, l3, u3, x2 + xo);
    }
  }
  const o0 = out + ((<usize>t0 * N + n) << 2);
  end3<H>(G, a00, a01, a02, o0, N, w0, x0, xr, K8, K);
  if (R > 1) end3<H>(G, a10, a11, a12, o0 + (<usize>q << 2), N, w1, x0, xr, K8, K);
  if (R > 2) end3<H>(G, a20, a21, a22, o0 + (<usize>q << 3), N, w2, x0, xr, K8, K);
  if (R > 3) end3<H>(G, a30, a31, a32, o0 + <usize>q * 12, N, w3, x0, xr, K8, K);
}

/** A row's G outputs (tokens t0.., at o, o + 4N, ...): each accumulator's row_end16. */
@inline function end3<H>(G: i32, a0: v128, a1: v128, a2: v128, o: usize, N: i32, wr: usize, x0: usize, xr: usize, K8: i32, K: i32): void {
  const on = <usize>N << 2;
  store<f32>(o, row_end16<H>(a0, wr, x0, K8, K));
  if (G > 1) store<f32>(o + on, row_end16<H>(a1, wr, x0 + xr, K8, K));
  if (G > 2) store<f32>(o + 2 * on, row_end16<H>(a2, wr, x0 + 2 * xr, K8, K));
}
