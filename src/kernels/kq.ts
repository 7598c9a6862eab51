// K-quant weights (Q3_K, Q4_K, Q5_K, Q6_K, and IQ4_XS) times activations quantised as ggml's Q8_K, as ggml does on
// the CPU: per 256 activations one f32 scale d and int8 values, plus the sums of each 16 ("bsums").
// The weights' integers are multiplied as stored (no f32 decode): Q4_K nibbles 0..15, Q5_K 0..31,
// Q6_K's stored q + 32 in 0..63, Q3_K's level + 4 in 0..7 (their -32 / -4 offsets come back
// through the bsums). All are valid i7
// operands of relaxed dot, where every lowering (pmaddubsw, sdot, vpdpbusd) agrees. IQ4_XS's
// table values (-127..113) are not: their sign moves onto the activations, as ggml's AVX2 code
// does (|kv| * (x * sign kv), both in range), and the table lookups are nibble swizzles.
//
// Batch invariance (see q8.ts): every (token, row) is summed the same way, whatever the tokens in
// the call and the thread count. Per 256-block b, in order:
//   isum = sum_j sc_j * (q_j . xq_j)        exact i32 (Q6_K: minus 32 * sum_j sc_j * bsum_j)
//   msum = sum_j m_j * bsum_j               exact i32 (Q4_K, Q5_K: the sub-block mins)
//   acc = acc + f32(isum) * (d * dx)         then (Q4_K, Q5_K) acc = acc + f32(msum) * (dmin * -dx)
// multiply-adds fused in the relaxed build (madd). How the integers are formed (instruction, lane
// order) cannot change them, and the float steps are the same per lane in every path: one token
// (blk4 over eight row streams, the weights read as stored: memory-bound), the rows left over
// (blk4 with a row repeated) and many tokens (kq_tile.ts: rows decoded once to int16 w' = sc * q,
// then pmaddwd per token). |isum| can pass 2^24: its f32 rounds, deterministically, once a block.
//
// i16 bounds: a relaxed dot lane is x0*w0 + x1*w1 with |x| <= 127 (Q8_K never writes -128) and
// w <= 63: <= 16002; Q4_K/Q5_K add two such lanes of one sub-block (<= 2*2*127*31 = 15748);
// IQ4_XS's |kv| <= 127 gives <= 32258, so its lanes go to pmaddwd one by one.
// The plain-SIMD build forms the same i16 lanes (other pairs, same sums) by extmul.
// Activations (quant_q8k): xq [T, K] int8, xd [T, K/256] f32, xb [T, K/256, 24] i16: sixteen sums
// of 16 values, then eight sums of 32.
import { chunkRows, claimChunk, f16, f16x4, hadd4, madd, pin, split } from './common';
import { scatter4 } from './q8_tile';
import { kq_tile } from './kq_tile';

/** Rows of one claimed chunk of a many-token product: a multiple of 64 (as q8.ts's tile_shared). */
const TILE_UNIT = 64;

export const KQ_Q4_K = 5, KQ_Q6_K = 6, KQ_Q3_K = 11, KQ_Q5_K = 12, KQ_IQ4_XS = 14; // dtype ids of dequant.ts

/** x [T, K] f32 -> Q8_K (quantize_row_q8_K_ref: iscale = -127 / (the value of largest |x|),
 * q = min(127, nearest(iscale * x)), d = 1 / iscale), so our activations are llama.cpp's; the
 * values also as int16 at xw [T, K] (for the many-token tile) unless xw is 0. */
export function quant_q8k(x: usize, T: i32, K: i32, xq: usize, xd: usize, xb: usize, xw: usize): void {
  const nb = K >> 8;
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < nb; b++) {
      const i = <usize>t * nb + b;
      const p = x + (i << 10), q = xq + (i << 8), s = xb + i * 48;
      let m = f32x4.splat(0);
      for (let j = 0; j < 64; j++) m = f32x4.max(m, f32x4.abs(v128.load(p + (<usize>j << 4))));
      m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
      const amax = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
      if (amax == 0 || amax != amax) {
        // zeros; or a NaN among the values (no element equals amax below): d = NaN, so the
        // products come out NaN (the model reports non-finite logits) as for the other types
        store<f32>(xd + (i << 2), amax == 0 ? 0 : NaN);
        memory.fill(q, 0, 256);
        memory.fill(s, 0, 48);
        if (xw) memory.fill(xw + (i << 9), 0, 512);
        continue;
      }
      let j: usize = 0; // the first value of largest magnitude gives the sign, as in ggml
      while (abs<f32>(load<f32>(p + (j << 2))) != amax) j++;
      const iscale: f32 = <f32>-127 / load<f32>(p + (j << 2));
      store<f32>(xd + (i << 2), <f32>1 / iscale);
      const vs = f32x4.splat(iscale);
      for (let k = 0; k < 16; k++) {
        const pk = p + (<usize>k << 6);
        const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pk), vs)));
        const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pk, 16), vs)));
        const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pk, 32), vs)));
        const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(pk, 48), vs)));
        // the saturating narrows are ggml's min(127, v) (v >= -127 always)
        const qv = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i0, i1), i16x8.narrow_i32x4_s(i2, i3));
        v128.store(q + (<usize>k << 4), qv);
        if (xw) {
          v128.store(xw + (i << 9) + (<usize>k << 5), i16x8.extend_low_i8x16_s(qv));
          v128.store(xw + (i << 9) + (<usize>k << 5), i16x8.extend_high_i8x16_s(qv), 16);
        }
        const w = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(qv));
        const ws = i32x4.add(w, v128.shuffle<i32>(w, w, 2, 3, 0, 1));
        store<i16>(s + (<usize>k << 1), <i16>(i32x4.extract_lane(ws, 0) + i32x4.extract_lane(ws, 1)));
      }
      for (let k = 0; k < 8; k++) {
        store<i16>(s + 32 + (<usize>k << 1), load<i16>(s + (<usize>k << 2)) + load<i16>(s + (<usize>k << 2), 2));
      }
    }
  }
}

// Vector constants, loaded where used: V8 builds a v128.const from immediates at every use
// (three or four instructions), a load from this static block is one (often folded into the op).
const KC = memory.data<u8>([
  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
  16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16,
  48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48,
  63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15,
  3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
], 16);
@inline export function k15(): v128 { return v128.load(KC); }
@inline export function k16(): v128 { return v128.load(KC, 16); }
@inline export function k48(): v128 { return v128.load(KC, 32); }
@inline export function k6464(): v128 { return v128.load(KC, 48); }
@inline export function k3(): v128 { return v128.load(KC, 64); }

// The block formats, as a type parameter (as q8.ts's W): u8 = Q4_K, u16 = Q5_K, i8 = Q6_K,
// i16 = IQ4_XS, i32 = Q3_K. The unsigned ones have mins (msum); the signed ones do not.
@inline export function bbytes<W>(): usize {
  if (isSigned<W>()) return sizeof<W>() == 1 ? 210 : sizeof<W>() == 2 ? 136 : 110;
  return sizeof<W>() == 1 ? 144 : 176;
}
/** Byte offset of the block's f16 d. */
@inline export function dofs<W>(): usize {
  if (isSigned<W>()) return sizeof<W>() == 1 ? 208 : sizeof<W>() == 2 ? 0 : 108;
  return 0;
}

/** Q3_K block p's sixteen 6-bit scales minus 32 as bytes (ggml's kmask form of its scale unpacking). */
@inline export function scales_q3(p: usize): v128 {
  const a0 = load<u32>(p + 96), a1 = load<u32>(p + 100), t = load<u32>(p + 104);
  const m4 = 0x0f0f0f0f, m2 = 0x03030303;
  let v = i32x4.splat((a0 & m4) | ((t & m2) << 4));
  v = i32x4.replace_lane(v, 1, (a1 & m4) | (((t >> 2) & m2) << 4));
  v = i32x4.replace_lane(v, 2, ((a0 >> 4) & m4) | (((t >> 4) & m2) << 4));
  v = i32x4.replace_lane(v, 3, ((a1 >> 4) & m4) | (((t >> 6) & m2) << 4));
  return i8x16.sub(v, i8x16.splat(32));
}

/** Q3_K levels + 4 (0..7) of 16 columns: bits 2j..2j+1 of q, and 4 where bit b of the hmask bytes h is set. */
@inline export function lev3(q: v128, h: v128, j: i32, b: i32): v128 {
  return v128.or(v128.and(sh16(q, -2 * j), k3()), v128.and(sh16(h, 2 - b), i8x16.splat(4)));
}

// kvalues_iq4nl (ggml-common.h) by nibble: |value|, sign mask (0xff where negative), value;
// then the multipliers that move bits 2j..2j+1 of a u16 to the top of lane j (scales_iq4)
const KV = memory.data<u8>([
  127, 104, 83, 65, 49, 35, 22, 10, 1, 13, 25, 38, 53, 69, 89, 113,
  255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0,
  0x81, 0x98, 0xad, 0xbf, 0xcf, 0xdd, 0xea, 0xf6, 1, 13, 25, 38, 53, 69, 89, 113,
  0, 0x40, 0, 0x10, 0, 0x04, 0, 0x01, 0x40, 0, 0x10, 0, 0x04, 0, 0x01, 0,
], 16);
@inline export function kv_signed(): v128 { return v128.load(KV, 32); }

/** 16 bytes of table t looked up by 16 indices < 16 (relaxed: one pshufb, every lowering agrees). */
@inline export function tlook(t: v128, i: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(t, i);
  return i8x16.swizzle(t, i);
}

/** IQ4_XS block p's eight sub-block scales ls - 32 as i16 lanes (ls: 4 low bits from scales_l,
 * 2 high from scales_h, as dequantize_row_iq4_xs). */
@inline export function scales_iq4(p: usize): v128 {
  const l = i32x4.splat(load<u32>(p + 4)), m = k15();
  const lo = v128.and(l, m), hi = v128.and(i16x8.shr_u(l, 4), m);
  const n = i8x16.shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 0, 0, 0, 0, 0, 0, 0, 0);
  const h = i16x8.shr_u(i16x8.mul(i16x8.splat(<i16>load<u16>(p + 2)), v128.load(KV, 48)), 14);
  return i16x8.sub(v128.or(i16x8.extend_low_i8x16_u(n), i16x8.shl(h, 4)), i16x8.splat(32));
}

/** i16 lanes of pair sums of x (int8) * w (0..63): the relaxed dot, or the same sums by extmul. */
@inline function rdot(x: v128, w: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(x, w);
  return i16x8.add(i16x8.extmul_low_i8x16_s(x, w), i16x8.extmul_high_i8x16_s(x, w));
}

/** i16 lane j of v in every lane. */
@inline function bc0(v: v128): v128 { return v128.shuffle<i16>(v, v, 0, 0, 0, 0, 0, 0, 0, 0); }
@inline function bc1(v: v128): v128 { return v128.shuffle<i16>(v, v, 1, 1, 1, 1, 1, 1, 1, 1); }
@inline function bc2(v: v128): v128 { return v128.shuffle<i16>(v, v, 2, 2, 2, 2, 2, 2, 2, 2); }
@inline function bc3(v: v128): v128 { return v128.shuffle<i16>(v, v, 3, 3, 3, 3, 3, 3, 3, 3); }
@inline function bc4(v: v128): v128 { return v128.shuffle<i16>(v, v, 4, 4, 4, 4, 4, 4, 4, 4); }
@inline function bc5(v: v128): v128 { return v128.shuffle<i16>(v, v, 5, 5, 5, 5, 5, 5, 5, 5); }
@inline function bc6(v: v128): v128 { return v128.shuffle<i16>(v, v, 6, 6, 6, 6, 6, 6, 6, 6); }
@inline function bc7(v: v128): v128 { return v128.shuffle<i16>(v, v, 7, 7, 7, 7, 7, 7, 7, 7); }

/** i32 lanes of sum sl * pl + sh * ph (i16 lanes; sl, sh: a sub-block scale in every lane). */
@inline function scl(pl: v128, sl: v128, ph: v128, sh: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(pl, sl), i32x4.dot_i16x8_s(ph, sh));
}

/** The 12 packed 6-bit scales and mins of a Q4_K/Q5_K block (get_scale_min_k4, four at a time,
 * as ggml's kmask form): bytes 0-7 the scales, 8-15 the mins. */
@inline export function scales_k(p: usize): v128 {
  // v = [d|dmin, u0, u1, u2]: scales = [u0 & m6, (u2 & m4) | ((u0 >> 6) & m2) << 4],
  // mins = [u1 & m6, ((u2 >> 4) & m4) | ((u1 >> 6) & m2) << 4]
  const v = v128.load(p);
  const a = v128.shuffle<i32>(v, v, 1, 3, 2, 3);
  const lo = v128.and(v128.shuffle<i32>(a, i32x4.shr_u(a, 4), 0, 1, 2, 7), k6464());
  const c = v128.shuffle<i32>(v, i32x4.splat(0), 4, 1, 4, 2);
  return v128.or(lo, i32x4.shl(v128.and(i32x4.shr_u(c, 6), k3()), 4));
}

// The mins' dot of the last kblk call (Q4_K/Q5_K): a second result, kept in a global.
let gm: v128 = i32x4(0, 0, 0, 0);

/** Q4_K: 32 bytes at q = sub-blocks 2g (low nibbles) and 2g+1 (high), activations at xa. */
@inline function nib4(q: usize, xa: usize, sl: v128, sh: v128): v128 {
  const m = k15();
  const v0 = v128.load(q), v1 = v128.load(q, 16);
  const pl = i16x8.add(rdot(v128.load(xa), v128.and(v0, m)), rdot(v128.load(xa, 16), v128.and(v1, m)));
  const ph = i16x8.add(rdot(v128.load(xa, 32), v128.and(i16x8.shr_u(v0, 4), m)), rdot(v128.load(xa, 48), v128.and(i16x8.shr_u(v1, 4), m)));
  return scl(pl, sl, ph, sh);
}

/** Bytes of v moved left (s > 0) or right (s < 0) by |s| bits, as 16-bit lanes: callers mask
 * to bits that stay within their byte (V8 has no byte shifts on x64 and emulates them). */
@inline export function sh16(v: v128, s: i32): v128 {
  if (s > 0) return i16x8.shl(v, s);
  if (s < 0) return i16x8.shr_u(v, -s);
  return v;
}

/** Q5_K: as nib4, the fifth bits of sub-block 2g (bit 2g of the qh bytes h0, h1) and 2g+1. */
@inline function nib5(q: usize, xa: usize, h0: v128, h1: v128, g: i32, sl: v128, sh: v128): v128 {
  const m = k15(), b4 = k16();
  const v0 = v128.load(q), v1 = v128.load(q, 16);
  const l0 = v128.or(v128.and(v0, m), v128.and(sh16(h0, 4 - 2 * g), b4));
  const l1 = v128.or(v128.and(v1, m), v128.and(sh16(h1, 4 - 2 * g), b4));
  const u0 = v128.or(v128.and(i16x8.shr_u(v0, 4), m), v128.and(sh16(h0, 3 - 2 * g), b4));
  const u1 = v128.or(v128.and(i16x8.shr_u(v1, 4), m), v128.and(sh16(h1, 3 - 2 * g), b4));
  const pl = i16x8.add(rdot(v128.load(xa), l0), rdot(v128.load(xa, 16), l1));
  const ph = i16x8.add(rdot(v128.load(xa, 32), u0), rdot(v128.load(xa, 48), u1));
  return scl(pl, sl, ph, sh);
}

/** Q6_K: 16 columns l of each 32-quarter of a half (ql, qh at the column; activations xa = the
 * half's first + l), sub-blocks with scales s0..s3 (every lane). Levels q + 32 in 0..63. */
@inline function six(ql: usize, qh: usize, xa: usize, s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  const m = k15(), m48 = k48();
  const a = v128.load(ql), c = v128.load(ql, 32), h = v128.load(qh);
  const q1 = v128.or(v128.and(a, m), v128.and(i16x8.shl(h, 4), m48));
  const q2 = v128.or(v128.and(c, m), v128.and(i16x8.shl(h, 2), m48));
  const q3 = v128.or(v128.and(i16x8.shr_u(a, 4), m), v128.and(h, m48));
  const q4 = v128.or(v128.and(i16x8.shr_u(c, 4), m), v128.and(i16x8.shr_u(h, 2), m48));
  return i32x4.add(scl(rdot(v128.load(xa), q1), s0, rdot(v128.load(xa, 32), q2), s1),
    scl(rdot(v128.load(xa, 64), q3), s2, rdot(v128.load(xa, 96), q4), s3));
}

/** Q3_K: 32 columns (two sub-blocks) of shift j from the 32 qs bytes at q, hmask bit b of h0, h1. */
@inline function three(q: usize, h0: v128, h1: v128, xa: usize, j: i32, b: i32, s0: v128, s1: v128): v128 {
  const u0 = lev3(v128.load(q), h0, j, b), u1 = lev3(v128.load(q, 16), h1, j, b);
  return scl(rdot(v128.load(xa), u0), s0, rdot(v128.load(xa, 16), u1), s1);
}

/** IQ4_XS: sub-block of 32 at q (16 bytes: low nibbles, then high ones), activations xa, scale s. */
@inline function iq4sub(q: usize, xa: usize, s: v128): v128 {
  const m = k15(), ta = v128.load(KV), ts = v128.load(KV, 16);
  const v = v128.load(q);
  const lo = v128.and(v, m), hi = v128.and(i16x8.shr_u(v, 4), m);
  const ml = tlook(ts, lo), mh = tlook(ts, hi);
  const xl = v128.load(xa), xh = v128.load(xa, 16);
  // pairs of |kv| * |x| <= 2 * 127 * 127: the two halves go to pmaddwd apart (their sum would not fit i16)
  const pl = rdot(i8x16.sub(v128.xor(xl, ml), ml), tlook(ta, lo));
  const ph = rdot(i8x16.sub(v128.xor(xh, mh), mh), tlook(ta, hi));
  return scl(pl, s, ph, s);
}

/**
 * Lane partials (i32x4) of one row's block isum: weights at p, the token's block at xa (int8) and
 * xs (its 24 sums). Q4_K/Q5_K leave the mins' partials in gm.
 * Not inlined: a call per row and block costs less than what V8 does with 32 of these in one body
 * (Qwen2.5-1.5B-shaped Q6_K / Q4_K_M files, 2 threads, alternating: decode +15-50%, both Node 20 and 24).
 */
function kblk<W>(p: usize, xa: usize, xs: usize, sink: usize): v128 {
  if (isSigned<W>() && sizeof<W>() == 4) {
    // Q3_K: hmask 32 B, qs 64 B, 12 B of scales, d; sub-block (16 columns) 8 half + 2 j + i
    const sv = scales_q3(p);
    const sl = i16x8.extend_low_i8x16_s(sv), sh = i16x8.extend_high_i8x16_s(sv);
    // the -4 offset: -4 * sum_j sc_j * bsum_j
    let acc = i32x4.shl(scl(sl, v128.load(xs), sh, v128.load(xs, 16)), 2);
    const h0 = v128.load(p), h1 = v128.load(p + 16);
    acc = i32x4.sub(three(p + 32, h0, h1, xa, 0, 0, bc0(sl), bc1(sl)), acc);
    pin(sink, acc);
    acc = i32x4.add(acc, three(p + 32, h0, h1, xa + 32, 1, 1, bc2(sl), bc3(sl)));
    pin(sink, acc);
    acc = i32x4.add(acc, three(p + 32, h0, h1, xa + 64, 2, 2, bc4(sl), bc5(sl)));
    pin(sink, acc);
    acc = i32x4.add(acc, three(p + 32, h0, h1, xa + 96, 3, 3, bc6(sl), bc7(sl)));
    pin(sink, acc);
    acc = i32x4.add(acc, three(p + 64, h0, h1, xa + 128, 0, 4, bc0(sh), bc1(sh)));
    pin(sink, acc);
    acc = i32x4.add(acc, three(p + 64, h0, h1, xa + 160, 1, 5, bc2(sh), bc3(sh)));
    pin(sink, acc);
    acc = i32x4.add(acc, three(p + 64, h0, h1, xa + 192, 2, 6, bc4(sh), bc5(sh)));
    pin(sink, acc);
    return i32x4.add(acc, three(p + 64, h0, h1, xa + 224, 3, 7, bc6(sh), bc7(sh)));
  }
  if (isSigned<W>() && sizeof<W>() == 2) {
    // IQ4_XS: d, scales_h, scales_l, 128 B of nibbles (table indices)
    const s = scales_iq4(p);
    let acc = iq4sub(p + 8, xa, bc0(s));
    pin(sink, acc);
    acc = i32x4.add(acc, iq4sub(p + 24, xa + 32, bc1(s)));
    pin(sink, acc);
    acc = i32x4.add(acc, iq4sub(p + 40, xa + 64, bc2(s)));
    pin(sink, acc);
    acc = i32x4.add(acc, iq4sub(p + 56, xa + 96, bc3(s)));
    pin(sink, acc);
    acc = i32x4.add(acc, iq4sub(p + 72, xa + 128, bc4(s)));
    pin(sink, acc);
    acc = i32x4.add(acc, iq4sub(p + 88, xa + 160, bc5(s)));
    pin(sink, acc);
    acc = i32x4.add(acc, iq4sub(p + 104, xa + 192, bc6(s)));
    pin(sink, acc);
    return i32x4.add(acc, iq4sub(p + 120, xa + 224, bc7(s)));
  }
  if (isSigned<W>()) {
    // Q6_K: ql 128 B, qh 64 B, 16 int8 scales (one per 16 values), d
    const sv = v128.load(p + 192);
    const sl = i16x8.extend_low_i8x16_s(sv), sh = i16x8.extend_high_i8x16_s(sv);
    // the -32 offset: -32 * sum_j sc_j * bsum_j
    let acc = i32x4.shl(scl(sl, v128.load(xs), sh, v128.load(xs, 16)), 5);
    acc = i32x4.sub(six(p, p + 128, xa, bc0(sl), bc2(sl), bc4(sl), bc6(sl)), acc);
    pin(sink, acc);
    acc = i32x4.add(acc, six(p + 16, p + 144, xa + 16, bc1(sl), bc3(sl), bc5(sl), bc7(sl)));
    pin(sink, acc);
    acc = i32x4.add(acc, six(p + 64, p + 160, xa + 128, bc0(sh), bc2(sh), bc4(sh), bc6(sh)));
    pin(sink, acc);
    return i32x4.add(acc, six(p + 80, p + 176, xa + 144, bc1(sh), bc3(sh), bc5(sh), bc7(sh)));
  }
  const sv = scales_k(p);
  const sc = i16x8.extend_low_i8x16_u(sv);
  gm = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(sv), v128.load(xs, 32));
  if (sizeof<W>() == 1) {
    // Q4_K: d, dmin, scales, 128 B of nibbles
    let acc = nib4(p + 16, xa, bc0(sc), bc1(sc));
    pin(sink, acc);
    acc = i32x4.add(acc, nib4(p + 48, xa + 64, bc2(sc), bc3(sc)));
    pin(sink, acc);
    acc = i32x4.add(acc, nib4(p + 80, xa + 128, bc4(sc), bc5(sc)));
    pin(sink, acc);
    return i32x4.add(acc, nib4(p + 112, xa + 192, bc6(sc), bc7(sc)));
  }
  // Q5_K: d, dmin, scales, 32 B of fifth bits (bit 2g / 2g+1 of byte l: column l of sub-block 2g / 2g+1), 128 B of nibbles
  const h0 = v128.load(p + 16), h1 = v128.load(p + 32);
  let acc = nib5(p + 48, xa, h0, h1, 0, bc0(sc), bc1(sc));
  pin(sink, acc);
  acc = i32x4.add(acc, nib5(p + 80, xa + 64, h0, h1, 1, bc2(sc), bc3(sc)));
  pin(sink, acc);
  acc = i32x4.add(acc, nib5(p + 112, xa + 128, h0, h1, 2, bc4(sc), bc5(sc)));
  pin(sink, acc);
  return i32x4.add(acc, nib5(p + 144, xa + 192, h0, h1, 3, bc6(sc), bc7(sc)));
}

/** One block of four rows (block bo of rows w0..w3) for one token: the canonical steps on acc. */
@inline function blk4<W>(w0: usize, w1: usize, w2: usize, w3: usize, bo: usize, xa: usize, xs: usize, dx: v128, acc: v128, sink: usize): v128 {
  const p0 = w0 + bo, p1 = w1 + bo, p2 = w2 + bo, p3 = w3 + bo;
  // a store between rows (to an output slot written again later) keeps Binaryen from merging
  // the rows' activation loads into sixteen vectors held across the block (V8 spills them)
  const i0 = kblk<W>(p0, xa, xs, sink); const m0 = gm;
  store<i32>(sink, i32x4.extract_lane(i0, 0));
  const i1 = kblk<W>(p1, xa, xs, sink); const m1 = gm;
  store<i32>(sink, i32x4.extract_lane(i1, 0));
  const i2 = kblk<W>(p2, xa, xs, sink); const m2 = gm;
  store<i32>(sink, i32x4.extract_lane(i2, 0));
  const i3 = kblk<W>(p3, xa, xs, sink); const m3 = gm;
  const ii = f32x4.convert_i32x4_s(hadd4(i0, i1, i2, i3));
  const o = dofs<W>();
  if (isSigned<W>()) return madd(ii, f32x4.mul(f16x4(p0 + o, p1 + o, p2 + o, p3 + o), dx), acc);
  acc = madd(ii, f32x4.mul(f16x4(p0, p1, p2, p3), dx), acc);
  const mm = f32x4.convert_i32x4_s(hadd4(m0, m1, m2, m3));
  return madd(mm, f32x4.mul(f16x4(p0 + 2, p1 + 2, p2 + 2, p3 + 2), f32x4.neg(dx)), acc);
}

/** Eight rows (w0 + i*rs; i >= cnt repeat the last row, their lanes unused) for token t's
 * activations: out[i*os] for i < cnt. */
@inline function rows8<W>(o: usize, os: usize, w0: usize, rs: usize, cnt: i32, xa: usize, xd: usize, xb: usize, nb: i32): void {
  const c1 = cnt > 1 ? rs : 0, c2 = cnt > 2 ? rs : 0, c3 = cnt > 3 ? rs : 0, c4 = cnt > 4 ? rs : 0;
  const c5 = cnt > 5 ? rs : 0, c6 = cnt > 6 ? rs : 0, c7 = cnt > 7 ? rs : 0;
  const w1 = w0 + c1, w2 = w1 + c2, w3 = w2 + c3, w4 = w3 + c4, w5 = w4 + c5, w6 = w5 + c6, w7 = w6 + c7;
  let lo = f32x4.splat(0), hi = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const bo = <usize>b * bbytes<W>(), a = xa + (<usize>b << 8), s = xb + <usize>b * 48;
    const dx = v128.load32_splat(xd + (<usize>b << 2));
    lo = blk4<W>(w0, w1, w2, w3, bo, a, s, dx, lo, o);
    if (cnt > 4) hi = blk4<W>(w4, w5, w6, w7, bo, a, s, dx, hi, o);
  }
  scatter4(o, os, lo, cnt);
  scatter4(o + (os << 4), os, hi, cnt - 4);
}

/** Streams q rows apart whose distance is a multiple of 2 KiB share L1 sets (see q8.ts). */
@inline function unaliased(q: i32, rowBytes: usize): i32 {
  return q > 1 && ((<usize>q * rowBytes) & 2047) == 0 ? q - 1 : q;
}

/** One token, rows n0..n1: eight streams q rows apart (as mv_q8: the prefetchers like separate
 * streams), then the rest eight contiguous rows at a time. */
function mv_kq<W>(out: usize, w: usize, xq: usize, xd: usize, xb: usize, K: i32, n0: i32, n1: i32): void {
  const nb = K >> 8, rb = <usize>nb * bbytes<W>();
  const q = unaliased((n1 - n0) >> 3, rb);
  let n = n0;
  for (; n < n0 + q; n++) rows8<W>(out + (<usize>n << 2), q, w + <usize>n * rb, <usize>q * rb, 8, xq, xd, xb, nb);
  n += 7 * q;
  for (; n < n1; n += 8) rows8<W>(out + (<usize>n << 2), 1, w + <usize>n * rb, rb, min(8, n1 - n), xq, xd, xb, nb);
}

/**
 * A few tokens (wasm.ts passes no int16 copy, xw = 0): mv_kq's eight-row groups, each group run
 * for every token in turn while its rows are in L1, so the weights stream from memory once; each
 * (token, row) is the one-token kernel's own sum, so its bits are the row alone's.
 */
function small_kq<W>(out: usize, w: usize, xq: usize, xd: usize, xb: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32): void {
  const nb = K >> 8, rb = <usize>nb * bbytes<W>(), on = <usize>N << 2, xr = <usize>nb * 4, br = <usize>nb * 48;
  const q = unaliased((n1 - n0) >> 3, rb);
  let n = n0;
  for (; n < n0 + q; n++)
    for (let t = 0; t < T; t++) rows8<W>(out + <usize>t * on + (<usize>n << 2), q, w + <usize>n * rb, <usize>q * rb, 8, xq + <usize>t * K, xd + <usize>t * xr, xb + <usize>t * br, nb);
  n += 7 * q;
  for (; n < n1; n += 8)
    for (let t = 0; t < T; t++) rows8<W>(out + <usize>t * on + (<usize>n << 2), 1, w + <usize>n * rb, rb, min(8, n1 - n), xq + <usize>t * K, xd + <usize>t * xr, xb + <usize>t * br, nb);
}

/** Rows n0..n1 of matrix (out, w, N) of type dt, for T tokens. */
function kq_rows(dt: i32, out: usize, w: usize, xq: usize, xd: usize, xb: usize, xw: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32, dec: usize): void {
  if (T == 1) {
    if (dt == KQ_Q6_K) mv_kq<i8>(out, w, xq, xd, xb, K, n0, n1);
    else if (dt == KQ_Q3_K) mv_kq<i32>(out, w, xq, xd, xb, K, n0, n1);
    else if (dt == KQ_IQ4_XS) mv_kq<i16>(out, w, xq, xd, xb, K, n0, n1);
    else if (dt == KQ_Q5_K) mv_kq<u16>(out, w, xq, xd, xb, K, n0, n1);
    else mv_kq<u8>(out, w, xq, xd, xb, K, n0, n1);
  } else if (xw == 0) {
    if (dt == KQ_Q6_K) small_kq<i8>(out, w, xq, xd, xb, T, N, K, n0, n1);
    else if (dt == KQ_Q3_K) small_kq<i32>(out, w, xq, xd, xb, T, N, K, n0, n1);
    else if (dt == KQ_IQ4_XS) small_kq<i16>(out, w, xq, xd, xb, T, N, K, n0, n1);
    else if (dt == KQ_Q5_K) small_kq<u16>(out, w, xq, xd, xb, T, N, K, n0, n1);
    else small_kq<u8>(out, w, xq, xd, xb, T, N, K, n0, n1);
  } else {
    if (dt == KQ_Q6_K) kq_tile<i8>(out, w, xw, xd, xb, T, N, K, n0, n1, dec);
    else if (dt == KQ_Q3_K) kq_tile<i32>(out, w, xw, xd, xb, T, N, K, n0, n1, dec);
    else if (dt == KQ_IQ4_XS) kq_tile<i16>(out, w, xw, xd, xb, T, N, K, n0, n1, dec);
    else if (dt == KQ_Q5_K) kq_tile<u16>(out, w, xw, xd, xb, T, N, K, n0, n1, dec);
    else kq_tile<u8>(out, w, xw, xd, xb, T, N, K, n0, n1, dec);
  }
}

/**
 * out_m [T, N_m] = x [T, K] w_m^T for `count` K-quant matrices sharing one Q8_K x (quant_q8k;
 * xw, the int16 copy, for T > 1). desc: per matrix four i32 (out, w, N, dtype id). T == 1 with a
 * counter (zeroed by the caller): rows handed out in chunks through it, as q8.ts's mv_shared;
 * else each matrix split over the parts. T > 1: the tile (kq_tile.ts) in this part's scratch,
 * scratch + part * sstride (kq_scratch_bytes). xgroup as q8.ts's mm_q8_0: T == 1: 0, one shared
 * quantised row; g > 0, matrix m reads row m / g (K bytes xq, K/256 scales, K/256 * 48 bytes of
 * sums per row); T > 1: 0 or a pointer to per-matrix (first row, rows) pairs. T > 1 with xw 0
 * (xgroup 0): a few tokens on the one-token kernel (small_kq).
 */
export function mm_kq(part: i32, parts: i32, desc: usize, count: i32, xq: usize, xd: usize, xb: usize, xw: usize, T: i32, K: i32, scratch: usize, sstride: i32, counter: usize, xgroup: i32): void {
  const nb = <usize>(K >> 8);
  if (T == 1 && counter != 0) {
    for (;;) {
      const k = claimChunk(counter, desc, count, parts, 128);
      if (k < 0) return;
      const m = <i32>(k >> 32), c = <i32>k, d = desc + <usize>m * 16, N = load<i32>(d, 8), ch = chunkRows(N, parts, 128);
      const r = xgroup > 0 ? <usize>(m / xgroup) : 0;
      kq_rows(load<i32>(d, 12), <usize>load<i32>(d), <usize>load<i32>(d, 4), xq + r * <usize>K, xd + r * nb * 4, xb + r * nb * 48, 0, 1, N, K, c * ch, min(N, (c + 1) * ch), 0);
    }
  }
  if (T > 1 && xgroup != 0) {
    // more tokens, matrix m on rows (first, count) = xgroup's pair m (as q8.ts's tile_segments)
    let m = 0, c = 0;
    for (;;) {
      if (counter != 0) {
        const k = claimChunk(counter, desc, count, parts, TILE_UNIT);
        if (k < 0) return;
        m = <i32>(k >> 32); c = <i32>k;
      } else if (m >= count) return;
      const d = desc + <usize>m * 16, sg = <usize>xgroup + <usize>m * 8, r = <usize>load<i32>(sg), Tm = load<i32>(sg, 4), N = load<i32>(d, 8);
      const ch = counter != 0 ? chunkRows(N, parts, TILE_UNIT) : N;
      if (Tm > 0) kq_rows(load<i32>(d, 12), <usize>load<i32>(d), <usize>load<i32>(d, 4), xq + r * <usize>K, xd + r * nb * 4, xb + r * nb * 48, xw + r * 2 * <usize>K, Tm, N, K, c * ch, min(N, (c + 1) * ch), scratch + <usize>part * sstride);
      if (counter == 0) m++;
    }
  }
  if (counter != 0) {
    // more tokens: the tile's rows handed out in chunks too (q8.ts's tile_shared; same bits)
    for (;;) {
      const k = claimChunk(counter, desc, count, parts, TILE_UNIT);
      if (k < 0) return;
      const m = <i32>(k >> 32), c = <i32>k, d = desc + <usize>m * 16, N = load<i32>(d, 8), ch = chunkRows(N, parts, TILE_UNIT);
      kq_rows(load<i32>(d, 12), <usize>load<i32>(d), <usize>load<i32>(d, 4), xq, xd, xb, xw, T, N, K, c * ch, min(N, (c + 1) * ch), scratch + <usize>part * sstride);
    }
  }
  for (let m = 0; m < count; m++) {
    const d = desc + <usize>m * 16, N = load<i32>(d, 8);
    const r = T == 1 && xgroup > 0 ? <usize>(m / xgroup) : 0;
    const n0 = split(N, part, parts, 8), n1 = split(N, part + 1, parts, 8);
    if (n0 < n1) kq_rows(load<i32>(d, 12), <usize>load<i32>(d), <usize>load<i32>(d, 4), xq + r * <usize>K, xd + r * nb * 4, xb + r * nb * 48, xw, T, N, K, n0, n1, scratch + <usize>part * sstride);
  }
}
