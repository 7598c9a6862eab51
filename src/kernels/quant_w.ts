// Weights quantised as they load (--quantize): F32 / F16 / BF16 values -> Q8_0 or Q4_0 blocks,
// bit-exact with ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref (and so with
// src/formats/quant, the oracle in the tests). The TypeScript quantiser manages ~50M values/s;
// this one runs at memory speed, so a 7B BF16 folder converts in seconds, not minutes.
import { DT_Q4_0, DT_Q8_0, dequant_row } from './dequant';

/** f32 -> f16 bits, round to nearest even (GGML_FP32_TO_FP16): finite inputs only. */
export function f16_bits(x: f32): u32 {
  const u = reinterpret<u32>(x);
  const sign = (u >> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to inf
  if (a < 0x38800000) {
    // an f16 subnormal: an integer count of 2^-24, rounded half to even (exact in f32: < 2^10)
    return sign | <u32>nearest(abs(x) * reinterpret<f32>(0x4b800000)); // 2^24
  }
  const r = a - 0x38000000;
  return sign | ((r + 0xfff + ((r >> 13) & 1)) >> 13);
}

/**
 * Quantise n values (a multiple of 32) of type `dt_in` (F32, F16, BF16 ids of dequant.ts) at src
 * into `dt_out` (Q8_0 or Q4_0) blocks at dst. scratch: 128 bytes (one decoded block).
 * Returns 0, or 1 + the index of the first block holding a NaN or infinity: ggml's handling of
 * those depends on the order of its scalar comparisons, so the caller quantises such a piece with
 * the TypeScript reference instead (only corrupt files have them).
 */
export function quant_weights(dt_in: i32, src: usize, n: i32, dt_out: i32, dst: usize, scratch: usize): i32 {
  const nb = n >> 5;
  const inBytes: usize = dt_in == 0 ? 128 : 64; // bytes of 32 input values
  for (let b = 0; b < nb; b++) {
    dequant_row(dt_in, src + <usize>b * inBytes, scratch, 32);
    if (dt_out == DT_Q8_0) {
      if (!q8_0_block(scratch, dst + <usize>b * 34)) return b + 1;
    } else if (dt_out == DT_Q4_0) {
      if (!q4_0_block(scratch, dst + <usize>b * 18)) return b + 1;
    } else {
      unreachable();
    }
  }
  return 0;
}

/** One Q8_0 block: d = amax / 127, q = roundf(x * (1/d)) (halves away from zero). */
@inline function q8_0_block(x: usize, out: usize): bool {
  let m = f32x4.splat(0);
  for (let i = 0; i < 8; i++) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>i << 4))));
  const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  if (!isFinite(amax)) return false; // also a NaN lane: f32x4.max propagates it
  const d: f32 = amax / 127;
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  store<u16>(out, <u16>f16_bits(d));
  const vid = f32x4.splat(id), half = f32x4.splat(0.5), one = f32x4.splat(1);
  for (let h = 0; h < 2; h++) {
    const p = x + (<usize>h << 6);
    const i0 = round_away(f32x4.mul(v128.load(p), vid), half, one);
    const i1 = round_away(f32x4.mul(v128.load(p, 16), vid), half, one);
    const i2 = round_away(f32x4.mul(v128.load(p, 32), vid), half, one);
    const i3 = round_away(f32x4.mul(v128.load(p, 48), vid), half, one);
    v128.store(out + 2 + (<usize>h << 4), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i0, i1), i16x8.narrow_i32x4_s(i2, i3)));
  }
  return true;
}

/** C's roundf on each lane, to i32: |v| split into integer and fraction (exact below 2^23), +1 from a fraction of one half up. */
@inline function round_away(v: v128, half: v128, one: v128): v128 {
  const a = f32x4.abs(v), t = f32x4.trunc(a);
  const r = f32x4.add(t, v128.and(f32x4.ge(f32x4.sub(a, t), half), one));
  return i32x4.trunc_sat_f32x4_s(v128.or(r, v128.and(v, f32x4.splat(-0.0)))); // the sign of v back
}

/** One Q4_0 block: d = (the value of largest magnitude, first of equals) / -8, q = min(15, (int)(x/d + 8.5)). */
@inline function q4_0_block(x: usize, out: usize): bool {
  let amax: f32 = 0, mx: f32 = 0;
  for (let j = 0; j < 32; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (!isFinite(v)) return false;
    if (amax < abs(v)) { amax = abs(v); mx = v; }
  }
  const d: f32 = mx / -8;
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  store<u16>(out, <u16>f16_bits(d));
  for (let j = 0; j < 16; j++) {
    const x0 = min<i32>(15, <i32>(load<f32>(x + (<usize>j << 2)) * id + <f32>8.5));
    const x1 = min<i32>(15, <i32>(load<f32>(x + (<usize>(j + 16) << 2)) * id + <f32>8.5));
    store<u8>(out + 2 + <usize>j, <u8>(x0 | (x1 << 4)));
  }
  return true;
}
