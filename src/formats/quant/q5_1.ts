// block_q5_1 (ggml-common.h): f16 d, f16 m, u32 qh (little-endian), then 16 bytes qs, laid out as
// Q5_0's (low nibble = element j, high nibble = element j+16, bit j of qh = fifth bit of element
// j); value = q * d + m. 24 bytes per 32 values.
import { f16At, minMax, nibble, putF16, putU32, u32At } from './block.js';

export const QK5_1 = 32;
export const BLOCK_Q5_1_BYTES = 24;

export function dequantizeQ5_1(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  for (let b = 0, p = srcOffset, o = dstOffset; b < nBlocks; b++, p += BLOCK_Q5_1_BYTES, o += QK5_1) {
    const d = f16At(src, p),
      m = f16At(src, p + 2),
      qh = u32At(src, p + 4);
    // q*d + m: a binary32 multiply, then a binary32 add (not fused)
    for (let j = 0; j < QK5_1; j++) dst[o + j] = Math.fround(nibble(src, p + 8, j, qh) * d) + m;
  }
}

/** quantize_row_q5_1_ref, with every float operation rounded to binary32 as C does. */
export function quantizeQ5_1(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const fr = Math.fround;
  for (let b = 0, s = srcOffset, p = dstOffset; b < nBlocks; b++, s += QK5_1, p += BLOCK_Q5_1_BYTES) {
    const [min, max] = minMax(src, s);
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    putF16(dst, p, d);
    putF16(dst, p + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // (uint8_t)(x0 + 0.5f) truncates; no clamp to 31 in ggml (the operand is at most 31.5 + rounding)
      const x0 = Math.trunc(fr(fr(fr(src[s + j]! - min) * id) + 0.5)) & 0xff;
      const x1 = Math.trunc(fr(fr(fr(src[s + j + 16]! - min) * id) + 0.5)) & 0xff;
      dst[p + 8 + j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
      qh |= (((x0 >> 4) & 1) << j) | (((x1 >> 4) & 1) << (j + 16));
    }
    putU32(dst, p + 4, qh >>> 0);
  }
}
