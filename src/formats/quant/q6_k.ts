// block_q6_K (ggml-common.h), 256 values in 16 sub-blocks of 16, 210 bytes:
//   128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales, f16 d.
// Each half (128 values) uses 64 ql bytes, 32 qh bytes and 8 scales; for l in 0..31:
//   y[l]    = low nibble of ql[l]    | qh[l] bits 0-1 << 4
//   y[l+32] = low nibble of ql[l+32] | qh[l] bits 2-3 << 4
//   y[l+64] = high nibble of ql[l]   | qh[l] bits 4-5 << 4
//   y[l+96] = high nibble of ql[l+32]| qh[l] bits 6-7 << 4
// each minus 32, times d * scales[l/16 + 0, 2, 4, 6] (dequantize_row_q6_K).
import { f16Table } from './half.js';

export const BLOCK_Q6_K_BYTES = 210;

export function dequantizeQ6_K(
  src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number,
): void {
  const t = f16Table();
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p + 208]! | (src[p + 209]! << 8)]!;
    let ql = p;
    let qh = p + 128;
    let sc = p + 192;
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l]!;
        const a = src[ql + l]!;
        const c = src[ql + l + 32]!;
        const q1 = ((a & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((c & 0x0f) | (((h >>> 2) & 3) << 4)) - 32;
        const q3 = ((a >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
        const q4 = ((c >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
        // (d*sc) is exact in binary32; the product with q is rounded once, on the store
        dst[o + l] = d * ((src[sc + is]! << 24) >> 24) * q1;
        dst[o + l + 32] = d * ((src[sc + is + 2]! << 24) >> 24) * q2;
        dst[o + l + 64] = d * ((src[sc + is + 4]! << 24) >> 24) * q3;
        dst[o + l + 96] = d * ((src[sc + is + 6]! << 24) >> 24) * q4;
      }
      o += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
    p += BLOCK_Q6_K_BYTES;
  }
}
