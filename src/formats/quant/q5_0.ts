// block_q5_0 (ggml-common.h): f16 d, u32 qh (little-endian), then 16 bytes qs. Byte j holds the
// low four bits of element j in its low nibble and of element j+16 in its high nibble; bit j of
// qh is the fifth bit of element j. value = (q - 16) * d. 22 bytes per 32 values.
import { f16Table, f32ToF16 } from './half.js';

export const QK5_0 = 32;
export const BLOCK_Q5_0_BYTES = 22;

export function dequantizeQ5_0(
  src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number,
): void {
  const t = f16Table();
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p]! | (src[p + 1]! << 8)]!;
    const qh = (src[p + 2]! | (src[p + 3]! << 8) | (src[p + 4]! << 16) | (src[p + 5]! << 24)) >>> 0;
    p += 6;
    for (let j = 0; j < 16; j++) {
      const q = src[p + j]!;
      dst[o + j] = (((q & 0x0f) | (((qh >>> j) & 1) << 4)) - 16) * d;
      dst[o + j + 16] = (((q >>> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
    }
    p += 16;
    o += QK5_0;
  }
}

/** quantize_row_q5_0_ref, with every float operation rounded to binary32 as C does. */
export function quantizeQ5_0(
  src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number,
): void {
  const fr = Math.fround;
  let s = srcOffset;
  let p = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    // the signed value of largest magnitude; the first one wins a tie (strict <)
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK5_0; j++) {
      const v = src[s + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    dst[p] = h & 0xff;
    dst[p + 1] = h >>> 8;
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x*id + 16.5f) truncates toward zero; the operand lies in [0.5, 32.5]
      const x0 = Math.min(31, Math.trunc(fr(fr(src[s + j]! * id) + 16.5)));
      const x1 = Math.min(31, Math.trunc(fr(fr(src[s + j + 16]! * id) + 16.5)));
      dst[p + 6 + j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
      qh |= ((x0 >> 4) & 1) << j;
      qh |= ((x1 >> 4) & 1) << (j + 16);
    }
    dst[p + 2] = qh & 0xff;
    dst[p + 3] = (qh >>> 8) & 0xff;
    dst[p + 4] = (qh >>> 16) & 0xff;
    dst[p + 5] = qh >>> 24;
    p += BLOCK_Q5_0_BYTES;
    s += QK5_0;
  }
}
