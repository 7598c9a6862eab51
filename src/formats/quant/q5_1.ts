// block_q5_1 (ggml-common.h): f16 d, f16 m, u32 qh (little-endian), then 16 bytes qs, laid out as
// Q5_0's (low nibble = element j, high nibble = element j+16, bit j of qh = fifth bit of element
// j); value = q * d + m. 24 bytes per 32 values.
import { f16Table, f32ToF16 } from './half.js';

export const QK5_1 = 32;
export const BLOCK_Q5_1_BYTES = 24;

export function dequantizeQ5_1(
  src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number,
): void {
  const t = f16Table();
  const fr = Math.fround;
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p]! | (src[p + 1]! << 8)]!;
    const m = t[src[p + 2]! | (src[p + 3]! << 8)]!;
    const qh = (src[p + 4]! | (src[p + 5]! << 8) | (src[p + 6]! << 16) | (src[p + 7]! << 24)) >>> 0;
    p += 8;
    for (let j = 0; j < 16; j++) {
      const q = src[p + j]!;
      // x0*d + m: a binary32 multiply, then a binary32 add (not fused)
      dst[o + j] = fr(((q & 0x0f) | (((qh >>> j) & 1) << 4)) * d) + m;
      dst[o + j + 16] = fr(((q >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d) + m;
    }
    p += 16;
    o += QK5_1;
  }
}

/** quantize_row_q5_1_ref, with every float operation rounded to binary32 as C does. */
export function quantizeQ5_1(
  src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number,
): void {
  const fr = Math.fround;
  let s = srcOffset;
  let p = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    let min = 3.4028234663852886e38;
    let max = -3.4028234663852886e38;
    for (let j = 0; j < QK5_1; j++) {
      const v = src[s + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    const hd = f32ToF16(d), hm = f32ToF16(min);
    dst[p] = hd & 0xff;
    dst[p + 1] = hd >>> 8;
    dst[p + 2] = hm & 0xff;
    dst[p + 3] = hm >>> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // (uint8_t)(x0 + 0.5f) truncates; no clamp to 31 in ggml (the operand is at most 31.5 + rounding)
      const x0 = Math.trunc(fr(fr(fr(src[s + j]! - min) * id) + 0.5)) & 0xff;
      const x1 = Math.trunc(fr(fr(fr(src[s + j + 16]! - min) * id) + 0.5)) & 0xff;
      dst[p + 8 + j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
      qh |= ((x0 >> 4) & 1) << j;
      qh |= ((x1 >> 4) & 1) << (j + 16);
    }
    dst[p + 4] = qh & 0xff;
    dst[p + 5] = (qh >>> 8) & 0xff;
    dst[p + 6] = (qh >>> 16) & 0xff;
    dst[p + 7] = qh >>> 24;
    p += BLOCK_Q5_1_BYTES;
    s += QK5_1;
  }
}
