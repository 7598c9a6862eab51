// KV-cache rows in f16 or Q8_0 (llama.cpp's --cache-type-k/v): quantised as a pass stores its new
// keys and values, and decoded by attention (ops.ts) one block of rows at a time into its scratch,
// never the whole cache. Decoding is exact (an f16 or q * d is an f32), so attention on such a
// cache gives the bits it gives on an f32 cache holding the decoded values.
import { DT_F16, DT_F32, DT_Q8_0, dequant_row } from './dequant';
import { f16_bits, quant_weights } from './quant_w';

export const KV_F32 = 0, KV_F16 = 1, KV_Q8_0 = 2;

/** Bytes of one head's row of Dh values (Q8_0: Dh a multiple of 32). */
@inline export function kv_head_bytes(kvt: i32, Dh: i32): usize {
  return kvt == KV_F32 ? <usize>Dh << 2 : kvt == KV_F16 ? <usize>Dh << 1 : <usize>(Dh >> 5) * 34;
}

/** Bytes of one cache row of `width` values: rows start on a 4-byte word (backend.ts kvRowWords). */
@inline export function kv_row_bytes(kvt: i32, width: i32): usize {
  return (kv_head_bytes(kvt, width) + 3) & ~(<usize>3);
}

/**
 * n rows of `width` f32 values at src (row after row) -> n cache rows at dst as kvt: f16 rounded
 * to nearest even (NaN kept a NaN, as GGML_FP32_TO_FP16), Q8_0 as quantize_row_q8_0_ref.
 * Returns 0, or 1 + the first row with a NaN or infinity in a Q8_0 block (ggml's result there
 * follows its comparison order: the caller quantises that row with the TypeScript reference).
 * scratch: 128 bytes.
 */
export function kv_store(kvt: i32, dst: usize, src: usize, n: i32, width: i32, scratch: usize): i32 {
  const rb = kv_row_bytes(kvt, width), fb = <usize>width << 2;
  for (let r = 0; r < n; r++) {
    const s = src + <usize>r * fb, d = dst + <usize>r * rb;
    if (kvt == KV_F32) memory.copy(d, s, fb);
    else if (kvt == KV_F16) {
      for (let i = 0; i < width; i++) {
        const x = load<f32>(s + (<usize>i << 2));
        store<u16>(d + (<usize>i << 1), <u16>(x != x ? ((reinterpret<u32>(x) >> 16) & 0x8000) | 0x7e00 : f16_bits(x)));
      }
    } else if (quant_weights(DT_F32, s, width, DT_Q8_0, d, scratch) != 0) return r + 1;
  }
  return 0;
}

/** Rows j0..j0+nb of one head (the head's first row at p, rows rb bytes apart) decoded to f32 at dst, Dh apart. */
@inline export function kv_decode(kvt: i32, dst: usize, p: usize, rb: usize, nb: i32, Dh: i32): void {
  if (kvt == KV_F16 && (Dh & 7) == 0) {
    f16_rows(dst, p, rb, nb, Dh);
    return;
  }
  const dt = kvt == KV_F16 ? DT_F16 : DT_Q8_0;
  for (let j = 0; j < nb; j++) dequant_row(dt, p + <usize>j * rb, dst + ((<usize>j * Dh) << 2), Dh);
}

/** f16 rows of Dh (a multiple of 8) values: dequant_row's conversion (see f16x8_lo) with the test
 * for infinities and NaN once per block, not per 8 values; such a block is redone exactly. */
function f16_rows(dst: usize, p: usize, rb: usize, nb: i32, Dh: i32): void {
  const s = f32x4.splat(reinterpret<f32>(0x77800000)), e = i16x8.splat(<i16>0x7c00), m = i16x8.splat(<i16>0x8fff); // 2^112
  let special = i16x8.splat(0);
  for (let j = 0; j < nb; j++) {
    const src = p + <usize>j * rb, o = dst + ((<usize>j * Dh) << 2);
    for (let k = 0; k < Dh; k += 8) {
      const h = v128.load(src + (<usize>k << 1));
      const lo = i16x8.shl(h, 13), hi = v128.and(i16x8.shr_s(h, 3), m);
      v128.store(o + (<usize>k << 2), f32x4.mul(i16x8.shuffle(lo, hi, 0, 8, 1, 9, 2, 10, 3, 11), s));
      v128.store(o + (<usize>k << 2), f32x4.mul(i16x8.shuffle(lo, hi, 4, 12, 5, 13, 6, 14, 7, 15), s), 16);
      special = v128.or(special, i16x8.eq(v128.and(h, e), e));
    }
  }
  if (v128.any_true(special)) for (let j = 0; j < nb; j++) dequant_row(DT_F16, p + <usize>j * rb, dst + ((<usize>j * Dh) << 2), Dh);
}
