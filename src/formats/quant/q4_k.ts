// block_q4_K (ggml-common.h), 256 values in 8 sub-blocks of 32, 144 bytes:
//   f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs, 128 bytes of nibbles.
// Sub-block j: y = d*sc_j*q - dmin*m_j. Each 32-byte group of qs holds sub-block 2g in its
// low nibbles and sub-block 2g+1 in its high nibbles (dequantize_row_q4_K).
import { f16Table } from './half.js';

export const QK_K = 256;
export const BLOCK_Q4_K_BYTES = 144;

/**
 * get_scale_min_k4: sub-blocks 0..3 keep scale and min in the low 6 bits of bytes j and j+4;
 * sub-blocks 4..7 take the low/high nibble of byte j+4 plus the top 2 bits of bytes j-4 / j.
 * `s` is the offset of the 12 scale bytes in `b`; writes [scale, min] into `out`.
 */
export function scaleMinK4(j: number, b: Uint8Array, s: number, out: Uint8Array | number[]): void {
  if (j < 4) {
    out[0] = b[s + j]! & 63;
    out[1] = b[s + j + 4]! & 63;
  } else {
    out[0] = (b[s + j + 4]! & 0x0f) | ((b[s + j - 4]! >>> 6) << 4);
    out[1] = (b[s + j + 4]! >>> 4) | ((b[s + j]! >>> 6) << 4);
  }
}

export function dequantizeQ4_K(
  src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number,
): void {
  const t = f16Table();
  const fr = Math.fround;
  const sm = [0, 0];
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p]! | (src[p + 1]! << 8)]!;
    const dmin = t[src[p + 2]! | (src[p + 3]! << 8)]!;
    const sc = p + 4;
    let q = p + 16;
    for (let g = 0; g < 4; g++) {
      scaleMinK4(2 * g, src, sc, sm);
      const d1 = d * sm[0]!; // exact in binary32: 11-bit d times a 6-bit scale
      const m1 = dmin * sm[1]!;
      scaleMinK4(2 * g + 1, src, sc, sm);
      const d2 = d * sm[0]!;
      const m2 = dmin * sm[1]!;
      for (let l = 0; l < 32; l++) dst[o + l] = fr(d1 * (src[q + l]! & 0x0f) - m1);
      for (let l = 0; l < 32; l++) dst[o + 32 + l] = fr(d2 * (src[q + l]! >>> 4) - m2);
      q += 32;
      o += 64;
    }
    p += BLOCK_Q4_K_BYTES;
  }
}
