// Stored formats -> f32 rows, bit-exact with src/formats/quant (and so with ggml's dequantisers).
// dtype ids (shared with wasm.ts): 0 F32, 1 F16, 2 BF16, 3 Q8_0, 4 Q4_0, 5 Q4_K, 6 Q6_K, 7 Q4_1, 8 Q5_0, 9 Q5_1,
// 10 Q2_K, 11 Q3_K, 12 Q5_K, 13 IQ4_NL, 14 IQ4_XS (the last five in dequant_k.ts).
import { f16, f16_to_f32 } from './common';
import { DT_Q2_K, dequant_row_k, min_k4, row_bytes_k, scale_k4, store16 } from './dequant_k';

export const DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2, DT_Q8_0 = 3, DT_Q4_0 = 4, DT_Q4_K = 5, DT_Q6_K = 6;
export const DT_Q4_1 = 7, DT_Q5_0 = 8, DT_Q5_1 = 9;

/** Bytes of one row of K values. */
export function row_bytes(dtype: i32, K: i32): usize {
  switch (dtype) {
    case DT_F32: return <usize>K << 2;
    case DT_F16: case DT_BF16: return <usize>K << 1;
    case DT_Q8_0: return <usize>(K >> 5) * 34;
    case DT_Q4_0: return <usize>(K >> 5) * 18;
    case DT_Q4_1: return <usize>(K >> 5) * 20;
    case DT_Q5_0: return <usize>(K >> 5) * 22;
    case DT_Q5_1: return <usize>(K >> 5) * 24;
    case DT_Q4_K: return <usize>(K >> 8) * 144;
    case DT_Q6_K: return <usize>(K >> 8) * 210;
  }
  return row_bytes_k(dtype, K);
}

/**
 * Eight halves -> two f32x4 holding the same bits as the floats times 2^-112 (sign kept):
 * the i32 lane is (h & 0x8000) << 16 | (h & 0x7fff) << 13, built from two 16-bit halves.
 * Infinities and NaN come out finite; weights never hold them.
 */
@inline export function f16x8_lo(h: v128): v128 {
  const lo = i16x8.shl(h, 13), hi = v128.and(i16x8.shr_s(h, 3), i16x8.splat(<i16>0x8fff));
  return i16x8.shuffle(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11);
}
@inline export function f16x8_hi(h: v128): v128 {
  const lo = i16x8.shl(h, 13), hi = v128.and(i16x8.shr_s(h, 3), i16x8.splat(<i16>0x8fff));
  return i16x8.shuffle(lo, hi, 4, 12, 5, 13, 6, 14, 7, 15);
}

/** Decode `K` values of one row at `src` into f32 at `dst`. */
export function dequant_row(dtype: i32, src: usize, dst: usize, K: i32): void {
  if (dtype >= DT_Q2_K) { dequant_row_k(dtype, src, dst, K); return; }
  if (dtype == DT_F32) { memory.copy(dst, src, <usize>K << 2); return; }
  if (dtype == DT_F16) {
    const s = f32x4.splat(reinterpret<f32>(0x77800000)); // 2^112
    let k = 0;
    for (; k + 8 <= K; k += 8) {
      const h = v128.load(src + (<usize>k << 1));
      v128.store(dst + (<usize>k << 2), f32x4.mul(f16x8_lo(h), s));
      v128.store(dst + (<usize>k << 2), f32x4.mul(f16x8_hi(h), s), 16);
      // the SIMD trick does not keep infinities / NaN: redo such lanes exactly
      const e = i16x8.splat(<i16>0x7c00);
      if (v128.any_true(i16x8.eq(v128.and(h, e), e))) {
        for (let j = k; j < k + 8; j++) store<f32>(dst + (<usize>j << 2), f16_to_f32(load<u16>(src + (<usize>j << 1))));
      }
    }
    for (; k < K; k++) store<f32>(dst + (<usize>k << 2), f16_to_f32(load<u16>(src + (<usize>k << 1))));
    return;
  }
  if (dtype == DT_BF16) {
    const z = i32x4.splat(0);
    let k = 0;
    for (; k + 8 <= K; k += 8) {
      const h = v128.load(src + (<usize>k << 1));
      v128.store(dst + (<usize>k << 2), i16x8.shuffle(z, h, 0, 8, 1, 9, 2, 10, 3, 11));
      v128.store(dst + (<usize>k << 2), i16x8.shuffle(z, h, 4, 12, 5, 13, 6, 14, 7, 15), 16);
    }
    for (; k < K; k++) store<u32>(dst + (<usize>k << 2), <u32>load<u16>(src + (<usize>k << 1)) << 16);
    return;
  }
  if (dtype == DT_Q8_0) {
    for (let b = 0; b < (K >> 5); b++) {
      const p = src + <usize>b * 34, o = dst + (<usize>b << 7);
      const d = f32x4.splat(f16(p));
      for (let i = 0; i < 2; i++) {
        const q = v128.load(p + 2 + (<usize>i << 4));
        const l = i16x8.extend_low_i8x16_s(q), h = i16x8.extend_high_i8x16_s(q);
        const oo = o + (<usize>i << 6);
        v128.store(oo, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(l)), d));
        v128.store(oo, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(l)), d), 16);
        v128.store(oo, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h)), d), 32);
        v128.store(oo, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h)), d), 48);
      }
    }
    return;
  }
  if (dtype == DT_Q4_0) {
    for (let b = 0; b < (K >> 5); b++) {
      const p = src + <usize>b * 18, o = dst + (<usize>b << 7);
      const d = f16(p);
      for (let j = 0; j < 16; j++) {
        const q = <i32>load<u8>(p + 2 + j);
        store<f32>(o + (<usize>j << 2), <f32>((q & 15) - 8) * d);
        store<f32>(o + (<usize>(j + 16) << 2), <f32>((q >> 4) - 8) * d);
      }
    }
    return;
  }
  if (dtype == DT_Q4_1) {
    // q * d + m: a multiply, then an add (not fused), as dequantize_row_q4_1
    for (let b = 0; b < (K >> 5); b++) {
      const p = src + <usize>b * 20, o = dst + (<usize>b << 7);
      const d = f16(p), m = f16(p + 2);
      for (let j = 0; j < 16; j++) {
        const q = <i32>load<u8>(p + 4 + j);
        store<f32>(o + (<usize>j << 2), <f32>(q & 15) * d + m);
        store<f32>(o + (<usize>(j + 16) << 2), <f32>(q >> 4) * d + m);
      }
    }
    return;
  }
  if (dtype == DT_Q5_0 || dtype == DT_Q5_1) {
    // Q5_0: (q - 16) * d; Q5_1: q * d + m. Bit j of qh is the fifth bit of element j.
    const one = dtype == DT_Q5_1;
    const bb: usize = one ? 24 : 22, hoff: usize = one ? 4 : 2;
    for (let b = 0; b < (K >> 5); b++) {
      const p = src + <usize>b * bb, o = dst + (<usize>b << 7);
      const d = f16(p), m = one ? f16(p + 2) : <f32>0;
      const qh = load<u32>(p + hoff);
      const qs = p + hoff + 4;
      for (let j = 0; j < 16; j++) {
        const q = <i32>load<u8>(qs + j);
        const q0 = (q & 15) | <i32>(((qh >> j) & 1) << 4), q1 = (q >> 4) | <i32>(((qh >> (j + 16)) & 1) << 4);
        if (one) {
          store<f32>(o + (<usize>j << 2), <f32>q0 * d + m);
          store<f32>(o + (<usize>(j + 16) << 2), <f32>q1 * d + m);
        } else {
          store<f32>(o + (<usize>j << 2), <f32>(q0 - 16) * d);
          store<f32>(o + (<usize>(j + 16) << 2), <f32>(q1 - 16) * d);
        }
      }
    }
    return;
  }
  if (dtype == DT_Q4_K) {
    for (let b = 0; b < (K >> 8); b++) {
      const p = src + <usize>b * 144;
      let o = dst + (<usize>b << 10);
      const d = f16(p), dmin = f16(p + 2);
      const sc = p + 4;
      let q = p + 16;
      for (let g = 0; g < 4; g++) {
        const j = 2 * g;
        const d1 = f32x4.splat(d * <f32>scale_k4(j, sc)), m1 = f32x4.splat(dmin * <f32>min_k4(j, sc));
        const d2 = f32x4.splat(d * <f32>scale_k4(j + 1, sc)), m2 = f32x4.splat(dmin * <f32>min_k4(j + 1, sc));
        for (let h = 0; h < 2; h++) {
          const v = v128.load(q + (<usize>h << 4));
          // weight l: d1 * (low nibble) - m1; weight l + 32: d2 * (high nibble) - m2 (not fused)
          store16(o + (<usize>h << 6), v128.and(v, i8x16.splat(15)), d1, m1);
          store16(o + 128 + (<usize>h << 6), i8x16.shr_u(v, 4), d2, m2);
        }
        q += 32;
        o += 256;
      }
    }
    return;
  }
  if (dtype == DT_Q6_K) {
    const z = f32x4.splat(0);
    for (let b = 0; b < (K >> 8); b++) {
      const p = src + <usize>b * 210;
      let o = dst + (<usize>b << 10);
      const d = f16(p + 208);
      let ql = p, qh = p + 128, sc = p + 192;
      for (let half = 0; half < 2; half++) {
        for (let is = 0; is < 2; is++) {
          // sixteen weights per vector share one scale: (d * scale) * (q - 32), as the scalar form
          const l = <usize>is << 4;
          const h = v128.load(qh + l), a = v128.load(ql + l), c = v128.load(ql + l + 32);
          const m15 = i8x16.splat(15), m3 = i8x16.splat(3), o32 = i8x16.splat(32);
          const q1 = i8x16.sub(v128.or(v128.and(a, m15), i8x16.shl(v128.and(h, m3), 4)), o32);
          const q2 = i8x16.sub(v128.or(v128.and(c, m15), i8x16.shl(v128.and(i8x16.shr_u(h, 2), m3), 4)), o32);
          const q3 = i8x16.sub(v128.or(i8x16.shr_u(a, 4), i8x16.shl(v128.and(i8x16.shr_u(h, 4), m3), 4)), o32);
          const q4 = i8x16.sub(v128.or(i8x16.shr_u(c, 4), i8x16.shl(i8x16.shr_u(h, 6), 4)), o32);
          const s = sc + <usize>is;
          store16(o + (l << 2), q1, f32x4.splat(d * <f32>load<i8>(s)), z);
          store16(o + ((l + 32) << 2), q2, f32x4.splat(d * <f32>load<i8>(s, 2)), z);
          store16(o + ((l + 64) << 2), q3, f32x4.splat(d * <f32>load<i8>(s, 4)), z);
          store16(o + ((l + 96) << 2), q4, f32x4.splat(d * <f32>load<i8>(s, 6)), z);
        }
        o += 512;
        ql += 64;
        qh += 32;
        sc += 8;
      }
    }
  }
}

/** out[t, :] = row tokens[t] of table [*, K] (embedding lookup). tokens: i32 [T]. */
export function embed_rows(dtype: i32, table: usize, tokens: usize, T: i32, K: i32, out: usize): void {
  const rb = row_bytes(dtype, K);
  for (let t = 0; t < T; t++) {
    dequant_row(dtype, table + <usize>load<i32>(tokens + (<usize>t << 2)) * rb, out + ((<usize>t * K) << 2), K);
  }
}
