// block_q4_1 (ggml-common.h): f16 d, f16 m, then 16 bytes qs. Byte j holds element j in its low
// nibble and element j+16 in its high nibble; value = q * d + m. 20 bytes per 32 values.
import { f16Table, f32ToF16 } from './half.js';

export const QK4_1 = 32;
export const BLOCK_Q4_1_BYTES = 20;

export function dequantizeQ4_1(
  src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number,
): void {
  const t = f16Table();
  const fr = Math.fround;
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p]! | (src[p + 1]! << 8)]!;
    const m = t[src[p + 2]! | (src[p + 3]! << 8)]!;
    p += 4;
    for (let j = 0; j < 16; j++) {
      const q = src[p + j]!;
      // x0*d + m: a binary32 multiply, then a binary32 add (not fused)
      dst[o + j] = fr((q & 0x0f) * d) + m;
      dst[o + j + 16] = fr((q >>> 4) * d) + m;
    }
    p += 16;
    o += QK4_1;
  }
}

/** quantize_row_q4_1_ref, with every float operation rounded to binary32 as C does. */
export function quantizeQ4_1(
  src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number,
): void {
  const fr = Math.fround;
  let s = srcOffset;
  let p = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    let min = 3.4028234663852886e38;
    let max = -3.4028234663852886e38;
    for (let j = 0; j < QK4_1; j++) {
      const v = src[s + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    const hd = f32ToF16(d), hm = f32ToF16(min);
    dst[p] = hd & 0xff;
    dst[p + 1] = hd >>> 8;
    dst[p + 2] = hm & 0xff;
    dst[p + 3] = hm >>> 8;
    p += 4;
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x0 + 0.5f) truncates toward zero; the operand is >= 0.5
      const x0 = Math.trunc(fr(fr(fr(src[s + j]! - min) * id) + 0.5));
      const x1 = Math.trunc(fr(fr(fr(src[s + j + 16]! - min) * id) + 0.5));
      dst[p + j] = Math.min(15, x0) | (Math.min(15, x1) << 4);
    }
    p += 16;
    s += QK4_1;
  }
}
