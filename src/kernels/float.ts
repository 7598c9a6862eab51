// Products with float weights (F32, F16, BF16) and, through a row-decoding step, every other
// stored format: rows are decoded to f32 four at a time into this thread's scratch and then
// dotted with all T tokens, so the decode cost is shared by the tokens.
import { dot4, hsum, madd, split } from './common';
import { DT_F16, DT_F32, dequant_row, f16x8_hi, f16x8_lo, row_bytes } from './dequant';
import { small16 } from './small';

// Every (token, row) of mm_rows is summed the same way, whatever the tile: lanes over K & ~3 in
// order, hsum, the scalar tail in order. So a row's result does not depend on how many tokens
// share the call (nor on the thread count); mv_f16 sums F16 rows the same way.

/** out[t, n] for one f32 row (the last rows of a matrix whose N is not a multiple of 4). */
@inline function dot1(x: usize, w0: usize, K: i32): f32 {
  let a0 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) a0 = madd(v128.load(w0 + (<usize>k << 2)), v128.load(x + (<usize>k << 2)), a0);
  let s0 = hsum(a0);
  for (; k < K; k++) s0 += load<f32>(w0 + (<usize>k << 2)) * load<f32>(x + (<usize>k << 2));
  return s0;
}

/** out0[0..3], out1[0..3]: four f32 rows (r, r+stride, ...) times two activation rows x0, x1. */
@inline function dot4x2(o0: usize, o1: usize, x0: usize, x1: usize, r: usize, stride: usize, K: i32): void {
  const r1 = r + stride, r2 = r1 + stride, r3 = r2 + stride;
  let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
  let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const o = <usize>k << 2;
    const u = v128.load(x0 + o), v = v128.load(x1 + o);
    const w0 = v128.load(r + o), w1 = v128.load(r1 + o), w2 = v128.load(r2 + o), w3 = v128.load(r3 + o);
    a00 = madd(w0, u, a00); a01 = madd(w1, u, a01); a02 = madd(w2, u, a02); a03 = madd(w3, u, a03);
    a10 = madd(w0, v, a10); a11 = madd(w1, v, a11); a12 = madd(w2, v, a12); a13 = madd(w3, v, a13);
  }
  let s00 = hsum(a00), s01 = hsum(a01), s02 = hsum(a02), s03 = hsum(a03);
  let s10 = hsum(a10), s11 = hsum(a11), s12 = hsum(a12), s13 = hsum(a13);
  for (; k < K; k++) {
    const o = <usize>k << 2, u = load<f32>(x0 + o), v = load<f32>(x1 + o);
    const w0 = load<f32>(r + o), w1 = load<f32>(r1 + o), w2 = load<f32>(r2 + o), w3 = load<f32>(r3 + o);
    s00 += w0 * u; s01 += w1 * u; s02 += w2 * u; s03 += w3 * u;
    s10 += w0 * v; s11 += w1 * v; s12 += w2 * v; s13 += w3 * v;
  }
  store<f32>(o0, s00); store<f32>(o0, s01, 4); store<f32>(o0, s02, 8); store<f32>(o0, s03, 12);
  store<f32>(o1, s10); store<f32>(o1, s11, 4); store<f32>(o1, s12, 8); store<f32>(o1, s13, 12);
}

/**
 * out [T, N] = x [T, K] w^T for rows of this part, w [N, K] of any stored type, in f32.
 * Rows are decoded four at a time into this part's scratch (scratch + part*sstride, 4*K floats;
 * unused for F32 weights) and stay in cache while every token passes them: the decode is shared
 * by the T tokens, and a 4-row x 2-token tile needs 6 loads per 8 fused multiply-adds.
 */
export function mm_rows(part: i32, parts: i32, out: usize, w: usize, x: usize, T: i32, N: i32, K: i32, dtype: i32, scratch: usize, sstride: i32): void {
  scratch += <usize>part * sstride;
  const rb = row_bytes(dtype, K), fb = <usize>K << 2, ns = <usize>N << 2;
  const n0 = split(N, part, parts, 4), n1 = split(N, part + 1, parts, 4);
  for (let n = n0; n < n1; n += 4) {
    const cnt = min(4, n1 - n);
    let r: usize = scratch;
    if (dtype == DT_F32) r = w + <usize>n * rb;
    else for (let i = 0; i < cnt; i++) dequant_row(dtype, w + <usize>(n + i) * rb, scratch + <usize>i * fb, K);
    let t = 0;
    if (cnt == 4) {
      for (; t + 2 <= T; t += 2) {
        const o = out + ((<usize>t * N + n) << 2), xr = x + <usize>t * fb;
        dot4x2(o, o + ns, xr, xr + fb, r, fb, K);
      }
    }
    for (; t < T; t++) {
      const xr = x + <usize>t * fb, o = out + ((<usize>t * N + n) << 2);
      if (cnt == 4) dot4(o, xr, r, r + fb, r + 2 * fb, r + 3 * fb, K);
      else for (let i = 0; i < cnt; i++) store<f32>(o + (<usize>i << 2), dot1(xr, r + <usize>i * fb, K));
    }
  }
}

/**
 * One token (T > 1: a few, small16 in small.ts) times F16 rows, converting in registers (no
 * decode pass). xs is x * 2^96 (T rows), so that the
 * weights' bit patterns (values times 2^-112, see f16x8_lo) give products times 2^-16; the sum is
 * scaled back by 2^16. Scaling by a power of two commutes with rounding, so these are mm_rows's
 * sums on the exact weights (same order: lanes over K & ~3, hsum, scalar tail) and a row's result
 * does not depend on the batch size, unless values fall below 2^-110, where the scaled form is
 * denormal and rounds differently (activations and partial sums that small do not occur in a
 * working model; the batch-invariance test uses ordinary values). mm_rows decodes F16 exactly
 * instead: there each weight is used by every token, and f16 subnormals held as f32 denormals
 * cost a microcode assist per use (tiles 3x slower on weights of std 0.02); here each weight is
 * used once and decode waits on memory. Infinite / NaN weights are not supported here (wasm.ts
 * routes such files to mm_rows). desc: per matrix three i32 (out, w, N), as mm_q8_0.
 */
export function mv_f16(part: i32, parts: i32, desc: usize, count: i32, xs: usize, K: i32, T: i32): void {
  if (T > 1) small16<i16>(part, parts, desc, count, xs, T, K); // x [T, K] (src/kernels/small.ts)
  else mv16<i16>(part, parts, desc, count, xs, K);
}

/**
 * One token (T > 1: a few, small16 in small.ts) times BF16 rows, converted in registers: a
 * bf16 is the top half of an f32, so the
 * conversion is one byte shuffle, exact, with no prescale (x is passed as is). Same sums as
 * mm_rows on the decoded rows, so a row's result does not depend on the batch size.
 */
export function mv_bf16(part: i32, parts: i32, desc: usize, count: i32, x: usize, K: i32, T: i32): void {
  if (T > 1) small16<u16>(part, parts, desc, count, x, T, K);
  else mv16<u16>(part, parts, desc, count, x, K);
}

// H = i16: F16 rows (x prescaled by 2^96, see mv_f16); H = u16: BF16 rows (x as is)
@inline function mv16<H>(part: i32, parts: i32, desc: usize, count: i32, xs: usize, K: i32): void {
  for (let m = 0; m < count; m++) {
    const d = desc + <usize>m * 12;
    const out = <usize>load<i32>(d), w = <usize>load<i32>(d, 4), N = load<i32>(d, 8);
    const n0 = split(N, part, parts, 2), n1 = split(N, part + 1, parts, 2);
    if (n0 < n1) mv16_rows<H>(out, w, xs, N, K, n0, n1);
  }
}

/** Eight 16-bit weights -> f32x4 of the first (lo) or last four, as the row's format reads them. */
// BF16: interleave with zero (punpcklwd / punpckhwd). A shuffle reading zero bytes twice means the
// same, but V8 then misses the interleave and emits two pshufb: 1.8x slower on Node 20.
@inline export function lo16<H>(h: v128): v128 {
  if (isSigned<H>()) return f16x8_lo(h);
  return i8x16.shuffle(i8x16.splat(0), h, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
}
@inline export function hi16<H>(h: v128): v128 {
  if (isSigned<H>()) return f16x8_hi(h);
  return i8x16.shuffle(i8x16.splat(0), h, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
}

function mv16_rows<H>(out: usize, w: usize, xs: usize, N: i32, K: i32, n0: i32, n1: i32): void {
  const rb = <usize>K << 1;
  const K8 = K & ~7;
  // eight separate row streams q apart, as in mm_q8_0 (decode waits on memory; sixteen, as Q8_0
  // uses, spill the sixteen accumulators here: 5% slower)
  const q = (n1 - n0) / 8;
  let n = n0;
  for (; n < n0 + q; n++) {
    const w0 = w + <usize>n * rb;
    const w1 = w0 + <usize>q * rb;
    const w2 = w1 + <usize>q * rb;
    const w3 = w2 + <usize>q * rb;
    const w4 = w3 + <usize>q * rb;
    const w5 = w4 + <usize>q * rb;
    const w6 = w5 + <usize>q * rb;
    const w7 = w6 + <usize>q * rb;
    let a0 = f32x4.splat(0); let a1 = f32x4.splat(0); let a2 = f32x4.splat(0); let a3 = f32x4.splat(0); let a4 = f32x4.splat(0); let a5 = f32x4.splat(0); let a6 = f32x4.splat(0); let a7 = f32x4.splat(0);
    for (let k = 0; k < K8; k += 8) {
      const xo = xs + (<usize>k << 2), xa = v128.load(xo), xb = v128.load(xo, 16), ko = <usize>k << 1;
      const h0 = v128.load(w0 + ko);
      a0 = madd(hi16<H>(h0), xb, madd(lo16<H>(h0), xa, a0));
      const h1 = v128.load(w1 + ko);
      a1 = madd(hi16<H>(h1), xb, madd(lo16<H>(h1), xa, a1));
      const h2 = v128.load(w2 + ko);
      a2 = madd(hi16<H>(h2), xb, madd(lo16<H>(h2), xa, a2));
      const h3 = v128.load(w3 + ko);
      a3 = madd(hi16<H>(h3), xb, madd(lo16<H>(h3), xa, a3));
      const h4 = v128.load(w4 + ko);
      a4 = madd(hi16<H>(h4), xb, madd(lo16<H>(h4), xa, a4));
      const h5 = v128.load(w5 + ko);
      a5 = madd(hi16<H>(h5), xb, madd(lo16<H>(h5), xa, a5));
      const h6 = v128.load(w6 + ko);
      a6 = madd(hi16<H>(h6), xb, madd(lo16<H>(h6), xa, a6));
      const h7 = v128.load(w7 + ko);
      a7 = madd(hi16<H>(h7), xb, madd(lo16<H>(h7), xa, a7));
    }
    store<f32>(out + (<usize>(n + 0 * q) << 2), row_end16<H>(a0, w0, xs, K8, K));
    store<f32>(out + (<usize>(n + 1 * q) << 2), row_end16<H>(a1, w1, xs, K8, K));
    store<f32>(out + (<usize>(n + 2 * q) << 2), row_end16<H>(a2, w2, xs, K8, K));
    store<f32>(out + (<usize>(n + 3 * q) << 2), row_end16<H>(a3, w3, xs, K8, K));
    store<f32>(out + (<usize>(n + 4 * q) << 2), row_end16<H>(a4, w4, xs, K8, K));
    store<f32>(out + (<usize>(n + 5 * q) << 2), row_end16<H>(a5, w5, xs, K8, K));
    store<f32>(out + (<usize>(n + 6 * q) << 2), row_end16<H>(a6, w6, xs, K8, K));
    store<f32>(out + (<usize>(n + 7 * q) << 2), row_end16<H>(a7, w7, xs, K8, K));
  }
  n += 7 * q;
  for (; n < n1; n++) {
    const w0 = w + <usize>n * rb;
    let a0 = f32x4.splat(0);
    for (let k = 0; k < K8; k += 8) {
      const h0 = v128.load(w0 + (<usize>k << 1)), xo = xs + (<usize>k << 2);
      a0 = madd(hi16<H>(h0), v128.load(xo, 16), madd(lo16<H>(h0), v128.load(xo), a0));
    }
    store<f32>(out + (<usize>n << 2), row_end16<H>(a0, w0, xs, K8, K));
  }
}

/** A row's end: one more 4-column step if K & 7 >= 4, hsum, the scalar tail (F16: the 2^16 scale back). */
@inline export function row_end16<H>(a: v128, wr: usize, xs: usize, K8: i32, K: i32): f32 {
  let k = K8;
  if (k + 4 <= K) {
    a = madd(lo16<H>(v128.load64_zero(wr + (<usize>k << 1))), v128.load(xs + (<usize>k << 2)), a);
    k += 4;
  }
  let s = hsum(a);
  for (; k < K; k++) {
    const h = <u32>load<u16>(wr + (<usize>k << 1));
    const v = isSigned<H>() ? reinterpret<f32>(((h & 0x8000) << 16) | ((h & 0x7fff) << 13)) : reinterpret<f32>(h << 16);
    s += v * load<f32>(xs + (<usize>k << 2));
  }
  return isSigned<H>() ? s * <f32>65536 : s;
}

/** dst = src * s over n floats (the x * 2^96 prescale of mv_f16). */
export function scale_f32(dst: usize, src: usize, n: i32, s: f32): void {
  const v = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), f32x4.mul(v128.load(src + (<usize>i << 2)), v));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)) * s);
}

export { DT_F16 };
