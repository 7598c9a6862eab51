// block_q4_1 (ggml-common.h): f16 d, f16 m, then 16 bytes qs. Byte j holds element j in its low
// nibble and element j+16 in its high nibble; value = q * d + m. 20 bytes per 32 values.
import { f16At, minMax, nibble, putF16 } from './block.js';

export const QK4_1 = 32;
export const BLOCK_Q4_1_BYTES = 20;

export function dequantizeQ4_1(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  for (let b = 0, p = srcOffset, o = dstOffset; b < nBlocks; b++, p += BLOCK_Q4_1_BYTES, o += QK4_1) {
    const d = f16At(src, p),
      m = f16At(src, p + 2);
    // q*d + m: a binary32 multiply, then a binary32 add (not fused)
    for (let j = 0; j < QK4_1; j++) dst[o + j] = Math.fround(nibble(src, p + 4, j) * d) + m;
  }
}

/** quantize_row_q4_1_ref, with every float operation rounded to binary32 as C does. */
export function quantizeQ4_1(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const fr = Math.fround;
  for (let b = 0, s = srcOffset, p = dstOffset; b < nBlocks; b++, s += QK4_1, p += BLOCK_Q4_1_BYTES) {
    const [min, max] = minMax(src, s);
    const d = fr(fr(max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    putF16(dst, p, d);
    putF16(dst, p + 2, min);
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x0 + 0.5f) truncates toward zero; the operand is >= 0.5
      const x0 = Math.trunc(fr(fr(fr(src[s + j]! - min) * id) + 0.5));
      const x1 = Math.trunc(fr(fr(fr(src[s + j + 16]! - min) * id) + 0.5));
      dst[p + 4 + j] = Math.min(15, x0) | (Math.min(15, x1) << 4);
    }
  }
}
