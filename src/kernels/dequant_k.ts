// Row decoders for Q2_K, Q3_K, Q5_K, IQ4_NL and IQ4_XS, bit-identical to src/formats/quant (and so
// to ggml's dequantize_row_*): in every type the product scale * level is exact in binary32, so the
// one rounding is the subtraction of the min (Q2_K, Q5_K), done here as in the scalar code.
// Layouts: see the headers of src/formats/quant/{q2_k,q3_k,q5_k,iq4_nl,iq4_xs}.ts.
import { f16 } from './common';

export const DT_Q2_K = 10, DT_Q3_K = 11, DT_Q5_K = 12, DT_IQ4_NL = 13, DT_IQ4_XS = 14;

/** 16 floats at o: scale * f32(q_i) - sub for the sixteen signed bytes of q (a multiply, then a subtract). */
@inline export function store16(o: usize, q: v128, scale: v128, sub: v128): void {
  const l = i16x8.extend_low_i8x16_s(q), h = i16x8.extend_high_i8x16_s(q);
  v128.store(o, f32x4.sub(f32x4.mul(scale, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(l))), sub));
  v128.store(o, f32x4.sub(f32x4.mul(scale, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(l))), sub), 16);
  v128.store(o, f32x4.sub(f32x4.mul(scale, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(h))), sub), 32);
  v128.store(o, f32x4.sub(f32x4.mul(scale, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(h))), sub), 48);
}

/** Bytes of one row of K values of these types (0 for any other). */
export function row_bytes_k(dtype: i32, K: i32): usize {
  switch (dtype) {
    case DT_Q2_K: return <usize>(K >> 8) * 84;
    case DT_Q3_K: return <usize>(K >> 8) * 110;
    case DT_Q5_K: return <usize>(K >> 8) * 176;
    case DT_IQ4_NL: return <usize>(K >> 5) * 18;
    case DT_IQ4_XS: return <usize>(K >> 8) * 136;
  }
  return 0;
}

// kvalues_iq4nl (ggml-common.h) as one vector, looked up sixteen nibbles at a time
@inline function kvalues(): v128 {
  return i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

/** Decode `K` values of one row at `src` into f32 at `dst` (dtype one of the DT_* above). */
export function dequant_row_k(dtype: i32, src: usize, dst: usize, K: i32): void {
  const z = f32x4.splat(0), m3 = i8x16.splat(3), m15 = i8x16.splat(15);
  if (dtype == DT_Q2_K) {
    for (let b = 0; b < (K >> 8); b++) {
      const p = src + <usize>b * 84;
      let o = dst + (<usize>b << 10);
      const d = f16(p + 80), dmin = f16(p + 82);
      for (let half = 0; half < 2; half++) {
        const q0 = v128.load(p + 16 + (<usize>half << 5)), q1 = v128.load(p + 32 + (<usize>half << 5));
        for (let j = 0; j < 4; j++) {
          const s = p + (<usize>half << 3) + (<usize>j << 1);
          const sc0 = <i32>load<u8>(s), sc1 = <i32>load<u8>(s, 1);
          const sh = <u32>(2 * j);
          store16(o, v128.and(i8x16.shr_u(q0, sh), m3), f32x4.splat(d * <f32>(sc0 & 15)), f32x4.splat(dmin * <f32>(sc0 >> 4)));
          store16(o + 64, v128.and(i8x16.shr_u(q1, sh), m3), f32x4.splat(d * <f32>(sc1 & 15)), f32x4.splat(dmin * <f32>(sc1 >> 4)));
          o += 128;
        }
      }
    }
    return;
  }
  if (dtype == DT_Q3_K) {
    const four = i8x16.splat(4), zb = i8x16.splat(0);
    for (let b = 0; b < (K >> 8); b++) {
      const p = src + <usize>b * 110;
      let o = dst + (<usize>b << 10);
      const d = f16(p + 108);
      const hm0 = v128.load(p), hm1 = v128.load(p + 16);
      for (let half = 0; half < 2; half++) {
        const q0 = v128.load(p + 32 + (<usize>half << 5)), q1 = v128.load(p + 48 + (<usize>half << 5));
        for (let j = 0; j < 4; j++) {
          const sh = <u32>(2 * j), m = i8x16.splat(<i8>(1 << <i8>(4 * half + j)));
          // level - 4 where the hmask bit is clear
          const v0 = i8x16.sub(v128.and(i8x16.shr_u(q0, sh), m3), v128.and(i8x16.eq(v128.and(hm0, m), zb), four));
          const v1 = i8x16.sub(v128.and(i8x16.shr_u(q1, sh), m3), v128.and(i8x16.eq(v128.and(hm1, m), zb), four));
          const s = 8 * half + 2 * j;
          store16(o, v0, f32x4.splat(d * <f32>scale_q3k(p + 96, s)), z);
          store16(o + 64, v1, f32x4.splat(d * <f32>scale_q3k(p + 96, s + 1)), z);
          o += 128;
        }
      }
    }
    return;
  }
  if (dtype == DT_Q5_K) {
    const one = i8x16.splat(1);
    for (let b = 0; b < (K >> 8); b++) {
      const p = src + <usize>b * 176;
      let o = dst + (<usize>b << 10);
      const d = f16(p), dmin = f16(p + 2);
      const sc = p + 4;
      const h0 = v128.load(p + 16), h1 = v128.load(p + 32);
      for (let g = 0; g < 4; g++) {
        const s = 2 * g;
        const d1 = f32x4.splat(d * <f32>scale_k4(s, sc)), m1 = f32x4.splat(dmin * <f32>min_k4(s, sc));
        const d2 = f32x4.splat(d * <f32>scale_k4(s + 1, sc)), m2 = f32x4.splat(dmin * <f32>min_k4(s + 1, sc));
        const q = p + 48 + (<usize>g << 5);
        for (let h = 0; h < 2; h++) {
          const v = v128.load(q + (<usize>h << 4)), hb = h ? h1 : h0;
          const lo = v128.or(v128.and(v, m15), i8x16.shl(v128.and(i8x16.shr_u(hb, <u32>s), one), 4));
          const hi = v128.or(i8x16.shr_u(v, 4), i8x16.shl(v128.and(i8x16.shr_u(hb, <u32>(s + 1)), one), 4));
          store16(o + (<usize>h << 6), lo, d1, m1);
          store16(o + 128 + (<usize>h << 6), hi, d2, m2);
        }
        o += 256;
      }
    }
    return;
  }
  if (dtype == DT_IQ4_NL) {
    const kv = kvalues();
    for (let b = 0; b < (K >> 5); b++) {
      const p = src + <usize>b * 18, o = dst + (<usize>b << 7);
      const d = f32x4.splat(f16(p));
      const q = v128.load(p + 2);
      store16(o, i8x16.swizzle(kv, v128.and(q, m15)), d, z);
      store16(o + 64, i8x16.swizzle(kv, i8x16.shr_u(q, 4)), d, z);
    }
    return;
  }
  if (dtype == DT_IQ4_XS) {
    const kv = kvalues();
    for (let b = 0; b < (K >> 8); b++) {
      const p = src + <usize>b * 136;
      let o = dst + (<usize>b << 10);
      const d = f16(p);
      const sh = <i32>load<u16>(p + 2);
      for (let ib = 0; ib < 8; ib++) {
        const ls = ((<i32>load<u8>(p + 4 + (ib >> 1)) >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
        const dl = f32x4.splat(d * <f32>(ls - 32));
        const q = v128.load(p + 8 + (<usize>ib << 4));
        store16(o, i8x16.swizzle(kv, v128.and(q, m15)), dl, z);
        store16(o + 64, i8x16.swizzle(kv, i8x16.shr_u(q, 4)), dl, z);
        o += 128;
      }
    }
  }
}

// Q3_K scale j of the 12 bytes at s (see scaleQ3K in src/formats/quant/q3_k.ts)
@inline function scale_q3k(s: usize, j: i32): i32 {
  const lo = j < 8 ? <i32>load<u8>(s + j) & 15 : <i32>load<u8>(s + j - 8) >> 4;
  return (lo | (((<i32>load<u8>(s + 8 + (j & 3)) >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

// get_scale_min_k4 (see src/formats/quant/kblock.ts)
@inline export function scale_k4(j: i32, s: usize): i32 {
  if (j < 4) return <i32>load<u8>(s + j) & 63;
  return (<i32>load<u8>(s + j + 4) & 15) | ((<i32>load<u8>(s + j - 4) >> 6) << 4);
}
@inline export function min_k4(j: i32, s: usize): i32 {
  if (j < 4) return <i32>load<u8>(s + j + 4) & 63;
  return (<i32>load<u8>(s + j + 4) >> 4) | ((<i32>load<u8>(s + j) >> 6) << 4);
}
