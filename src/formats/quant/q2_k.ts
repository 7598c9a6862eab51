// block_q2_K (ggml-common.h), 256 values in 16 sub-blocks of 16, 84 bytes:
//   16 bytes scales (low nibble: scale, high nibble: min, 4 bits each), 64 bytes of 2-bit levels,
//   f16 d, f16 dmin. Sub-block s: y = (d*sc_s)*q - dmin*m_s. In each 128-value half, byte l of its
//   32 holds values l, l+32, l+64, l+96 (bits 0-1, 2-3, 4-5, 6-7); values 0..15 of a 32-run come
//   from bytes 0..15, 16..31 from bytes 16..31, each run with its own scale (dequantize_row_q2_K).
import { f16At, putF16 } from './block.js';
import { QK_K, makeQkx2Quants, nearestInt, pack2Bit } from './kblock.js';

const fr = Math.fround;

export const BLOCK_Q2_K_BYTES = 84;

export function dequantizeQ2_K(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  for (let b = 0, p = srcOffset, o = dstOffset; b < nBlocks; b++, p += BLOCK_Q2_K_BYTES) {
    const d = f16At(src, p + 80),
      min = f16At(src, p + 82);
    for (let half = 0; half < 2; half++) {
      const q = p + 16 + 32 * half;
      for (let j = 0; j < 4; j++, o += 32) {
        const shift = 2 * j;
        for (let k = 0; k < 2; k++) {
          const sc = src[p + 8 * half + 2 * j + k]!;
          // d*(sc & 15) and min*(sc >> 4) are exact in binary32, and so is dl*q (q <= 3):
          // the subtraction is the one rounding, as in ggml
          const dl = d * (sc & 0xf),
            ml = min * (sc >>> 4);
          for (let l = 0; l < 16; l++) dst[o + 16 * k + l] = dl * ((src[q + 16 * k + l]! >>> shift) & 3) - ml;
        }
      }
    }
  }
}

/** quantize_row_q2_K_ref, every float operation rounded to binary32 as C (without FMA) does. */
export function quantizeQ2_K(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const L = new Uint8Array(QK_K);
  const laux = new Uint8Array(16);
  const w = new Float32Array(16);
  const scales = new Float32Array(16);
  const mins = new Float32Array(16);
  for (let b = 0; b < nBlocks; b++) {
    const xo = srcOffset + b * QK_K;
    const p = dstOffset + b * BLOCK_Q2_K_BYTES;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) w[l] = Math.abs(src[xo + 16 * j + l]!);
      const [s, m] = makeQkx2Quants(16, 3, src, xo + 16 * j, w, L, 16 * j, laux, -0.5, fr(0.1), 15, true);
      scales[j] = s;
      mins[j] = m;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    // scales[j] is a uint8_t: the int from nearest_int keeps its low 8 bits
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) dst[p + j] = nearestInt(fr(iscale * scales[j]!)) & 0xff;
      putF16(dst, p + 80, fr(maxScale / 15));
    } else {
      dst.fill(0, p, p + 16);
      putF16(dst, p + 80, 0);
    }
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++) dst[p + j] = (dst[p + j]! | (nearestInt(fr(iscale * mins[j]!)) << 4)) & 0xff;
      putF16(dst, p + 82, fr(maxMin / 15));
    } else {
      putF16(dst, p + 82, 0);
    }
    const d = f16At(dst, p + 80),
      dmin = f16At(dst, p + 82);
    for (let j = 0; j < 16; j++) {
      const dj = d * (dst[p + j]! & 0xf);
      if (!dj) continue; // keeps the levels chosen by makeQkx2Quants, as ggml does
      const dm = dmin * (dst[p + j]! >>> 4);
      for (let i = 0; i < 16; i++) {
        L[16 * j + i] = Math.max(0, Math.min(3, nearestInt(fr(fr(src[xo + 16 * j + i]! + dm) / dj))));
      }
    }
    pack2Bit(L, dst, p + 16);
  }
}
