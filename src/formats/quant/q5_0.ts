// block_q5_0 (ggml-common.h): f16 d, u32 qh (little-endian), then 16 bytes qs. Byte j holds the
// low four bits of element j in its low nibble and of element j+16 in its high nibble; bit j of
// qh is the fifth bit of element j. value = (q - 16) * d. 22 bytes per 32 values.
import { f16At, nibble, putF16, putU32, signedAbsMax, u32At } from './block.js';

export const QK5_0 = 32;
export const BLOCK_Q5_0_BYTES = 22;

export function dequantizeQ5_0(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  for (let b = 0, p = srcOffset, o = dstOffset; b < nBlocks; b++, p += BLOCK_Q5_0_BYTES, o += QK5_0) {
    const d = f16At(src, p),
      qh = u32At(src, p + 2);
    for (let j = 0; j < QK5_0; j++) dst[o + j] = (nibble(src, p + 6, j, qh) - 16) * d;
  }
}

/** quantize_row_q5_0_ref, with every float operation rounded to binary32 as C does. */
export function quantizeQ5_0(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const fr = Math.fround;
  for (let b = 0, s = srcOffset, p = dstOffset; b < nBlocks; b++, s += QK5_0, p += BLOCK_Q5_0_BYTES) {
    const d = fr(signedAbsMax(src, s) / -16);
    const id = d ? fr(1 / d) : 0;
    putF16(dst, p, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x*id + 16.5f) truncates toward zero; the operand lies in [0.5, 32.5]
      const x0 = Math.min(31, Math.trunc(fr(fr(src[s + j]! * id) + 16.5)));
      const x1 = Math.min(31, Math.trunc(fr(fr(src[s + j + 16]! * id) + 16.5)));
      dst[p + 6 + j] = (x0 & 0x0f) | ((x1 & 0x0f) << 4);
      qh |= (((x0 >> 4) & 1) << j) | (((x1 >> 4) & 1) << (j + 16));
    }
    putU32(dst, p + 2, qh >>> 0);
  }
}
