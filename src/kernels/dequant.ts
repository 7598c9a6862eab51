// Stored formats -> f32 rows, bit-exact with src/formats/quant (and so with ggml's dequantisers).
// dtype ids (shared with wasm.ts): 0 F32, 1 F16, 2 BF16, 3 Q8_0, 4 Q4_0, 5 Q4_K, 6 Q6_K.
import { f16, f16_to_f32 } from './common';

export const DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2, DT_Q8_0 = 3, DT_Q4_0 = 4, DT_Q4_K = 5, DT_Q6_K = 6;

/** Bytes of one row of K values. */
export function row_bytes(dtype: i32, K: i32): usize {
  switch (dtype) {
    case DT_F32: return <usize>K << 2;
    case DT_F16: case DT_BF16: return <usize>K << 1;
    case DT_Q8_0: return <usize>(K >> 5) * 34;
    case DT_Q4_0: return <usize>(K >> 5) * 18;
    case DT_Q4_K: return <usize>(K >> 8) * 144;
    case DT_Q6_K: return <usize>(K >> 8) * 210;
  }
  return 0;
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
  if (dtype == DT_Q4_K) {
    for (let b = 0; b < (K >> 8); b++) {
      const p = src + <usize>b * 144;
      let o = dst + (<usize>b << 10);
      const d = f16(p), dmin = f16(p + 2);
      const sc = p + 4;
      let q = p + 16;
      for (let g = 0; g < 4; g++) {
        const j = 2 * g;
        const d1 = d * <f32>scale_k4(j, sc), m1 = dmin * <f32>min_k4(j, sc);
        const d2 = d * <f32>scale_k4(j + 1, sc), m2 = dmin * <f32>min_k4(j + 1, sc);
        for (let l = 0; l < 32; l++) {
          const v = <i32>load<u8>(q + l);
          store<f32>(o + (<usize>l << 2), d1 * <f32>(v & 15) - m1);
          store<f32>(o + (<usize>(l + 32) << 2), d2 * <f32>(v >> 4) - m2);
        }
        q += 32;
        o += 256;
      }
    }
    return;
  }
  if (dtype == DT_Q6_K) {
    for (let b = 0; b < (K >> 8); b++) {
      const p = src + <usize>b * 210;
      let o = dst + (<usize>b << 10);
      const d = f16(p + 208);
      let ql = p, qh = p + 128, sc = p + 192;
      for (let half = 0; half < 2; half++) {
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const h = <i32>load<u8>(qh + l), a = <i32>load<u8>(ql + l), c = <i32>load<u8>(ql + l + 32);
          const q1 = ((a & 15) | ((h & 3) << 4)) - 32;
          const q2 = ((c & 15) | (((h >> 2) & 3) << 4)) - 32;
          const q3 = ((a >> 4) | (((h >> 4) & 3) << 4)) - 32;
          const q4 = ((c >> 4) | (((h >> 6) & 3) << 4)) - 32;
          store<f32>(o + (<usize>l << 2), d * <f32>load<i8>(sc + is) * <f32>q1);
          store<f32>(o + (<usize>(l + 32) << 2), d * <f32>load<i8>(sc + is + 2) * <f32>q2);
          store<f32>(o + (<usize>(l + 64) << 2), d * <f32>load<i8>(sc + is + 4) * <f32>q3);
          store<f32>(o + (<usize>(l + 96) << 2), d * <f32>load<i8>(sc + is + 6) * <f32>q4);
        }
        o += 512;
        ql += 64;
        qh += 32;
        sc += 8;
      }
    }
  }
}

// get_scale_min_k4 (see src/formats/quant/q4_k.ts)
@inline function scale_k4(j: i32, s: usize): i32 {
  if (j < 4) return <i32>load<u8>(s + j) & 63;
  return (<i32>load<u8>(s + j + 4) & 15) | ((<i32>load<u8>(s + j - 4) >> 6) << 4);
}
@inline function min_k4(j: i32, s: usize): i32 {
  if (j < 4) return <i32>load<u8>(s + j + 4) & 63;
  return (<i32>load<u8>(s + j + 4) >> 4) | ((<i32>load<u8>(s + j) >> 6) << 4);
}

/** out[t, :] = row tokens[t] of table [*, K] (embedding lookup). tokens: i32 [T]. */
export function embed_rows(dtype: i32, table: usize, tokens: usize, T: i32, K: i32, out: usize): void {
  const rb = row_bytes(dtype, K);
  for (let t = 0; t < T; t++) {
    dequant_row(dtype, table + <usize>load<i32>(tokens + (<usize>t << 2)) * rb, out + ((<usize>t * K) << 2), K);
  }
}
