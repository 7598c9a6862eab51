// block_q5_K (ggml-common.h), 256 values in 8 sub-blocks of 32, 176 bytes:
//   f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs (as Q4_K), 32 bytes qh (fifth
//   bits), 128 bytes of nibbles. Each 32-byte group g of qs holds sub-block 2g in its low nibbles
//   and 2g+1 in its high nibbles; the fifth bit of value l of sub-block s is bit s of qh[l].
//   y = (d*sc_s)*q - dmin*m_s (dequantize_row_q5_K).
import { f16At, putF16 } from './block.js';
import { QK_K, subBlockScalesMins, nearestInt, packScaleMinK4, scaleMinK4 } from './kblock.js';

const fr = Math.fround;

export const BLOCK_Q5_K_BYTES = 176;

export function dequantizeQ5_K(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  const sm = [0, 0];
  for (let b = 0, p = srcOffset, o = dstOffset; b < nBlocks; b++, p += BLOCK_Q5_K_BYTES) {
    const d = f16At(src, p),
      dmin = f16At(src, p + 2);
    for (let g = 0; g < 4; g++, o += 64) {
      const q = p + 48 + 32 * g;
      for (let k = 0; k < 2; k++) {
        const s = 2 * g + k;
        scaleMinK4(s, src, p + 4, sm);
        // d*sc and dmin*m are exact in binary32, and so is (d*sc)*q (q < 32): one rounding, on the subtraction
        const dl = d * sm[0]!,
          ml = dmin * sm[1]!;
        for (let l = 0; l < 32; l++) {
          const v = ((src[q + l]! >>> (4 * k)) & 0xf) | (((src[p + 16 + l]! >>> s) & 1) << 4);
          dst[o + 32 * k + l] = dl * v - ml;
        }
      }
    }
  }
}

/** quantize_row_q5_K_ref, every float operation rounded to binary32 as C (without FMA) does. */
export function quantizeQ5_K(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const L = new Uint8Array(QK_K);
  const laux = new Uint8Array(32);
  const w = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const ls = new Uint8Array(8),
    lm = new Uint8Array(8);
  const sm = [0, 0];
  for (let b = 0; b < nBlocks; b++) {
    const xo = srcOffset + b * QK_K;
    const p = dstOffset + b * BLOCK_Q5_K_BYTES;
    const [maxScale, maxMin] = subBlockScalesMins(src, xo, 31, -0.5, 15, w, L, laux, scales, mins);
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    for (let j = 0; j < 8; j++) {
      // uint8_t ls = nearest_int(...): the C conversion keeps the low 8 bits
      ls[j] = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
      lm[j] = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
    }
    packScaleMinK4(ls, lm, dst, p + 4);
    putF16(dst, p, fr(maxScale / 63));
    putF16(dst, p + 2, fr(maxMin / 63));
    const d = f16At(dst, p),
      dmin = f16At(dst, p + 2);
    for (let j = 0; j < 8; j++) {
      scaleMinK4(j, dst, p + 4, sm);
      const dj = d * sm[0]!;
      if (!dj) continue; // keeps the levels chosen by makeQkx2Quants, as ggml does
      const dm = dmin * sm[1]!;
      for (let i = 0; i < 32; i++) {
        L[32 * j + i] = Math.max(0, Math.min(31, nearestInt(fr(fr(src[xo + 32 * j + i]! + dm) / dj))));
      }
    }
    dst.fill(0, p + 16, p + 48);
    for (let g = 0; g < 4; g++) {
      for (let l = 0; l < 32; l++) {
        const l1 = L[64 * g + l]!,
          l2 = L[64 * g + 32 + l]!;
        dst[p + 16 + l] |= ((l1 >> 4) << (2 * g)) | ((l2 >> 4) << (2 * g + 1));
        dst[p + 48 + 32 * g + l] = (l1 & 0xf) | ((l2 & 0xf) << 4);
      }
    }
  }
}
