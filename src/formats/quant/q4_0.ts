// block_q4_0 (ggml-common.h): f16 d, then 16 bytes qs. Byte j holds element j in its low
// nibble and element j+16 in its high nibble; value = (q - 8) * d. 18 bytes per 32 values.
import { putF16, signedAbsMax } from './block.js';
import { f16Table } from './half.js';

export const QK4_0 = 32;
export const BLOCK_Q4_0_BYTES = 18;

export function dequantizeQ4_0(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  const t = f16Table();
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p]! | (src[p + 1]! << 8)]!;
    p += 2;
    for (let j = 0; j < 16; j++) {
      const q = src[p + j]!;
      dst[o + j] = ((q & 0x0f) - 8) * d;
      dst[o + j + 16] = ((q >>> 4) - 8) * d;
    }
    p += 16;
    o += QK4_0;
  }
}

/** quantize_row_q4_0_ref, with every float operation rounded to binary32 as C does. */
export function quantizeQ4_0(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const fr = Math.fround;
  let s = srcOffset;
  let p = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = fr(signedAbsMax(src, s) / -8);
    const id = d ? fr(1 / d) : 0;
    putF16(dst, p, d);
    p += 2;
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x*id + 8.5f) truncates toward zero; the operand lies in [0.5, 16.5]
      const x0 = Math.trunc(fr(fr(src[s + j]! * id) + 8.5));
      const x1 = Math.trunc(fr(fr(src[s + j + 16]! * id) + 8.5));
      dst[p + j] = Math.min(15, x0) | (Math.min(15, x1) << 4);
    }
    p += 16;
    s += QK4_0;
  }
}
